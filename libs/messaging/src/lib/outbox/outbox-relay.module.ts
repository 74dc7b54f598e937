import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { MetricsService } from '@tasksys/platform';
import { registerRelayMetrics } from '../messaging.metrics';
import { OUTBOX_RELAY_OPTIONS, OutboxRelayService, type OutboxRelayOptions } from './outbox-relay.service';

const definition = new ConfigurableModuleBuilder<OutboxRelayOptions>({
  optionsInjectionToken: OUTBOX_RELAY_OPTIONS,
})
  .setClassMethodName('register')
  .build();

/**
 * The outbox relay. The api runs it; workers run it too, so the sweeper's re-enqueues and
 * cancel signals go out with no api running (several relays are safe: SKIP LOCKED). Needs the global
 * `MessagingModule` and an `OUTBOX_STORE` provider in scope (the global TasksModule's PgOutboxStore).
 *
 * `register({ listen: false })` for a fallback relay (the workers'): it polls and is never woken by
 * other processes' commits, so a busy api's NOTIFYs do not cost every worker an empty round each.
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
export class OutboxRelayModule extends definition.ConfigurableModuleClass {}
