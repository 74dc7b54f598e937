import { Module } from '@nestjs/common';
import { ApiKeyService } from '../auth/api-key.service';
import { CreateTaskBatchCommand } from '../commands/create-task-batch.command';
import { StreamTokens } from '../stream/stream-tokens.service';
import { TaskEventLog } from '../stream/task-event-log';
import { TaskReports } from './task-reports';
import { TaskUpdateFeed } from './task-update.feed';
import { TaskQueries } from './task.queries';

/**
 * What the HTTP side needs from the task store beyond TaskStateMachine: read queries, live
 * updates, API keys, reports and batch creation. Needs TasksModule (global) in the app.
 * TaskStoreMetrics is separate: add it where MetricsModule is imported.
 */
@Module({
  providers: [
    TaskQueries,
    TaskReports,
    TaskUpdateFeed,
    ApiKeyService,
    CreateTaskBatchCommand,
    TaskEventLog,
    StreamTokens,
  ],
  exports: [
    TaskQueries,
    TaskReports,
    TaskUpdateFeed,
    ApiKeyService,
    CreateTaskBatchCommand,
    TaskEventLog,
    StreamTokens,
  ],
})
export class TaskQueriesModule {}
