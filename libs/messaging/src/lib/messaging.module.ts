import { MessageHandlerErrorBehavior, RabbitMQModule, type RabbitMQConfig } from '@golevelup/nestjs-rabbitmq';
import { ConfigurableModuleBuilder, type DynamicModule, Module } from '@nestjs/common';
import { MetricsService } from '@tasksys/platform';
import { QueueBrowser } from './admin/queue-browser';
import { UnroutedRedriver } from './admin/unrouted-redriver';
import { BrokerStatus } from './broker-status';
import { ConsumerFactory } from './consuming/consumer.factory';
import { QueueProbe } from './consuming/queue-probe';
import { type MessagingConfig, rabbitmqUrls } from './messaging.config';
import { MESSAGING_CONFIG } from './messaging.constants';
import { registerPublisherMetrics } from './messaging.metrics';
import { TaskPublisher } from './publishing/task.publisher';
import { RoutingUpkeep } from './routing/routing-upkeep.service';
import { buildTopology, Topology, type TopologyOptions } from './topology/topology';
import { TopologyDeclarer } from './topology/topology-declarer';

/** The broker settings, and for a worker the task types whose queues it declares and binds. */
export type MessagingOptions = MessagingConfig & TopologyOptions;

/** @internal golevelup settings: one connection, no handler discovery, nothing declared through its config. */
export function rabbitMqConfig(cfg: MessagingConfig): RabbitMQConfig {
  return {
    // A cluster's nodes: amqp-connection-manager tries the next one on every reconnect, and the
    // topology, consumers, relay and return listener are set up again on the new connection.
    uri: rabbitmqUrls(cfg.RABBITMQ_URL),
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

const definition = new ConfigurableModuleBuilder<MessagingOptions>({
  optionsInjectionToken: MESSAGING_CONFIG,
})
  .setClassMethodName('forRoot')
  .build();

/** `MessagingModule.forRootAsync(...)`: the options from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type MessagingModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * @internal Holds MESSAGING_CONFIG in a module of its own, so that RabbitMQModule's factory (in its
 * module) can import and inject it.
 */
@Module({ exports: [MESSAGING_CONFIG] })
class MessagingConfigModule extends definition.ConfigurableModuleClass {}

/**
 * RabbitMQ for both apps: one connection, the topology declared on every (re)connect, the
 * confirmed publisher, consumers and readiness. Global; import once in the app module:
 *
 * ```ts
 * MessagingModule.forRootAsync(fromConfig(messagingConfigSchema))
 * ```
 */
@Module({})
export class MessagingModule {
  static forRoot(options: MessagingOptions): DynamicModule {
    return MessagingModule.over(MessagingConfigModule.forRoot(options));
  }

  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    return MessagingModule.over(MessagingConfigModule.forRootAsync(options));
  }

  private static over(config: DynamicModule): DynamicModule {
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
        {
          provide: Topology,
          inject: [MESSAGING_CONFIG],
          useFactory: (cfg: MessagingOptions) => buildTopology(cfg, { serves: cfg.serves }),
        },
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
      exports: [
        config,
        RabbitMQModule,
        Topology,
        TopologyDeclarer,
        BrokerStatus,
        TaskPublisher,
        ConsumerFactory,
        QueueProbe,
        QueueBrowser,
        UnroutedRedriver,
        RoutingUpkeep,
      ],
    };
  }
}
