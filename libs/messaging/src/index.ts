// The public surface of @tasksys/messaging. Everything not named here is internal to the lib.

// The module and its configuration.
export { MessagingModule, type MessagingModuleAsyncOptions, type MessagingOptions } from './lib/messaging.module';
export { type MessagingConfig, messagingConfigSchema, rabbitmqUrls } from './lib/messaging.config';
export { HEADERS } from './lib/messaging.constants';
export { PublishError, type PublishFailure, TopologyMismatchError } from './lib/messaging.errors';
/** golevelup's connection, for code that needs the raw channel model (tests). */
export { AmqpConnection } from '@golevelup/nestjs-rabbitmq';

// What travels: the task message format.
export {
  cancelMessageSql,
  isUuid,
  type ControlMessage,
  type MalformedMessageCode,
  type ParsedTaskMessage,
  MAX_BUNDLE_TASKS,
  type ParsedWorkMessage,
  parseTaskMessage,
  parseWorkMessage,
  TASK_BUNDLE_SCHEMA_VERSION,
  TASK_MESSAGE_SCHEMA_VERSION,
  type TaskBundle,
  type TaskMessage,
  taskIdsOf,
  taskMessage,
  taskMessageSql,
  type WorkMessage,
  workMessageOf,
  workMessageSql,
} from './lib/task-message';

// Where it travels: the topology as data, and its declaration.
export {
  type AmqpArguments,
  type BindingDeclaration,
  buildTopology,
  type ExchangeDeclaration,
  type ExchangeType,
  type QueueDeclaration,
  type RetryTier,
  TASK_TYPE_NAME,
  Topology,
  type TopologyOptions,
} from './lib/topology/topology';
export { declareTopology } from './lib/topology/topology-declarer';
export { BrokerStatus } from './lib/broker-status';
export { type BackoffOptions, retryDelayMs } from './lib/retry-policy';

// Publishing and consuming.
export {
  type DeadLetterReason,
  type PublisherStats,
  type PublishOptions,
  TaskPublisher,
} from './lib/publishing/task.publisher';
export { type Consumer, ConsumerFactory, type ConsumerOptions, type Delivery } from './lib/consuming/consumer.factory';
export { QueueProbe } from './lib/consuming/queue-probe';
export { RoutingUpkeep } from './lib/routing/routing-upkeep.service';

// The outbox: the port the task store implements, and the relay.
export { OUTBOX_STORE, type OutboxBatchResult, type OutboxRecord, type OutboxStore } from './lib/outbox/outbox.store';
export { type OutboxRelayOptions, OutboxRelayService, type OutboxRelayStats } from './lib/outbox/outbox-relay.service';
export { OutboxRelayModule } from './lib/outbox/outbox-relay.module';

// Operators: broker inspection, dead-letter and unrouted queues.
export { type BrokerAdminConfig, brokerAdminConfigSchema } from './lib/admin/broker-admin.config';
export { BrokerAdminModule, type BrokerAdminModuleAsyncOptions } from './lib/admin/broker-admin.module';
export { BrokerUnavailableError } from './lib/admin/broker-admin.errors';
export { type BrowseDecision, type BrowsedMessage, MAX_BROWSE, QueueBrowser } from './lib/admin/queue-browser';
export {
  type QueueRole,
  type QueueStats,
  QueueStatsReader,
  type QueueStatsReport,
} from './lib/admin/queue-stats.reader';
export { UnroutedRedriver, type UnroutedRedriveResult } from './lib/admin/unrouted-redriver';
