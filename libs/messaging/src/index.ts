export {
  cancelMessageSql,
  type ControlMessage,
  parseControlMessage,
  type ParsedTaskMessage,
  parseTaskMessage,
  TASK_MESSAGE_SCHEMA_VERSION,
  type TaskMessage,
  taskMessage,
  taskMessageSql,
} from './lib/task-message';
export * from './lib/outbox/outbox.store';
export * from './lib/messaging.config';
export * from './lib/messaging.constants';
export * from './lib/messaging.errors';
export * from './lib/messaging.module';
export * from './lib/topology/topology';
export { declareTopology, TopologyDeclarer } from './lib/topology/topology-declarer';
export * from './lib/broker-status';
export * from './lib/retry-policy';
export * from './lib/publishing/task.publisher';
export * from './lib/consuming/consumer.factory';
export { QueueProbe } from './lib/consuming/queue-probe';
export { RoutingUpkeep } from './lib/routing/routing-upkeep.service';
export * from './lib/outbox/outbox-relay.service';
export * from './lib/outbox/outbox-relay.module';
export * from './lib/admin';
