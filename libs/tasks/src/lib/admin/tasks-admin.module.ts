import { Module } from '@nestjs/common';
import { OwnerLimitsService } from '../limits/owner-limits.service';
import { ReconcileCommand } from './reconcile.command';
import { RedriveDeadLettersCommand } from './redrive-dead-letters.command';
import { WorkerFleetQuery } from './worker-fleet.query';

/**
 * Operators' queries and commands over the task store: the worker fleet, reconcile, dead-letter
 * redrive. Needs TasksModule and MessagingModule (global) and BrokerAdminModule in the app.
 */
@Module({
  providers: [WorkerFleetQuery, ReconcileCommand, RedriveDeadLettersCommand, OwnerLimitsService],
  exports: [WorkerFleetQuery, ReconcileCommand, RedriveDeadLettersCommand, OwnerLimitsService],
})
export class TasksAdminModule {}
