import { Module } from '@nestjs/common';
import { MetricsService } from '@tasksys/platform';
import { registerRelayMetrics } from '../messaging.metrics';
import { OutboxRelayService } from './outbox-relay.service';

/**
 * The outbox relay. The api runs it; workers run it too, so the sweeper's re-enqueues and
 * cancel signals go out with no api running (several relays are safe: SKIP LOCKED). Needs the global
 * `MessagingModule` and an `OUTBOX_STORE` provider in scope (the global TasksModule's PgOutboxStore).
 */
@Module({
  providers: [
    OutboxRelayService,
    {
      provide: 'OUTBOX_RELAY_METRICS',
      inject: [{ token: MetricsService, optional: true }, OutboxRelayService],
      useFactory: (metrics: MetricsService | undefined, relay: OutboxRelayService) => {
        if (metrics) registerRelayMetrics(metrics, relay);
        return true;
      },
    },
  ],
  exports: [OutboxRelayService],
})
export class OutboxRelayModule {}
