import { AmqpConnection, MessageHandlerErrorBehavior, RabbitMQModule, type RabbitMQConfig } from '@golevelup/nestjs-rabbitmq';
import { type DynamicModule, Module, type ModuleMetadata } from '@nestjs/common';
import { MetricsService } from '@tasksys/platform';
import { registerPublisherMetrics } from './messaging.metrics';
import { BrokerStatus } from './broker-status';
import { ConsumerFactory } from './consuming/consumer.factory';
import { QueueBrowser } from './admin/queue-browser';
import { UnroutedRedriver } from './admin/unrouted-redriver';
import { QueueProbe } from './consuming/queue-probe';
import { RoutingUpkeep } from './routing/routing-upkeep.service';
import type { MessagingConfig } from './messaging.config';
import { MESSAGING_CONFIG } from './messaging.constants';
import { TaskPublisher } from './publishing/task.publisher';
import { buildTopology, Topology, type TopologyOptions } from './topology/topology';
import { TopologyDeclarer } from './topology/topology-declarer';

export interface MessagingModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  // Nest's own factory providers type their arguments as any[]; the same here.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  inject?: any[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  useFactory: (...args: any[]) => MessagingOptions | Promise<MessagingOptions>;
}

/** The broker settings, and for a worker the task types whose queues it declares and binds. */
export type MessagingOptions = MessagingConfig & TopologyOptions;

/** golevelup settings: one connection, no handler discovery, nothing declared through its config. */
export function rabbitMqConfig(cfg: MessagingConfig): RabbitMQConfig {
  return {
    uri: cfg.RABBITMQ_URL,
    // Start with the broker down; BrokerStatus reports not ready until it connects.
    connectionInitOptions: { wait: false },
    // We consume through ConsumerFactory (own channels, explicit ack rule), never golevelup handlers.
    registerHandlers: false,
    enableDirectReplyTo: false,
    defaultPublishOptions: { persistent: true },
    // Not used (no handlers), but never the library default REQUEUE: a hot loop for a poison message.
    defaultSubscribeErrorBehavior: MessageHandlerErrorBehavior.NACK,
    connectionManagerOptions: { heartbeatIntervalInSeconds: 10, reconnectTimeInSeconds: 1 },
    // No `exchanges`/`queues` here: a 406 on golevelup's default channel drops the connection in a
    // loop. TopologyDeclarer declares them on throwaway channels instead.
  };
}

/** @internal Provides MESSAGING_CONFIG so RabbitMQModule's factory can inject it. */
@Module({})
class MessagingConfigModule {
  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    return {
      module: MessagingConfigModule,
      imports: options.imports ?? [],
      providers: [{ provide: MESSAGING_CONFIG, inject: options.inject ?? [], useFactory: options.useFactory }],
      exports: [MESSAGING_CONFIG],
    };
  }
}

/**
 * RabbitMQ for both apps: one connection, the topology declared on every (re)connect, the
 * confirmed publisher, consumers and readiness. Global; import once in the app module:
 *
 * ```ts
 * MessagingModule.forRootAsync({ inject: [ConfigService], useFactory: (c) => c.get('messaging') })
 * ```
 */
@Module({})
export class MessagingModule {
  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    const config = MessagingConfigModule.forRootAsync(options);
    return {
      module: MessagingModule,
      global: true,
      imports: [
        config,
        RabbitMQModule.forRootAsync({
          imports: [config],
          inject: [MESSAGING_CONFIG],
          useFactory: (cfg: MessagingConfig) => rabbitMqConfig(cfg),
        }),
      ],
      providers: [
        { provide: Topology, inject: [MESSAGING_CONFIG], useFactory: (cfg: MessagingOptions) => buildTopology(cfg, { serves: cfg.serves }) },
        TopologyDeclarer,
        BrokerStatus,
        TaskPublisher,
        ConsumerFactory,
        QueueProbe,
        QueueBrowser,
        UnroutedRedriver,
        RoutingUpkeep,
        {
          // Metrics only when the app has a MetricsModule.
          provide: 'MESSAGING_METRICS',
          inject: [{ token: MetricsService, optional: true }, TaskPublisher],
          useFactory: (metrics: MetricsService | undefined, publisher: TaskPublisher) => {
            if (metrics) registerPublisherMetrics(metrics, publisher);
            return true;
          },
        },
      ],
      exports: [config, RabbitMQModule, Topology, TopologyDeclarer, BrokerStatus, TaskPublisher, ConsumerFactory, QueueProbe, QueueBrowser, UnroutedRedriver, RoutingUpkeep],
    };
  }
}

export { AmqpConnection };
