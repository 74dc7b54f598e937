// The public surface of @tasksys/tasks. Everything not named here is internal to the lib.

// The task store: the module, its configuration, the schema.
export { TasksModule, type TasksModuleAsyncOptions } from './lib/tasks.module';
export { type DatabaseConfig, databaseConfigSchema } from './lib/database.config';
export { dataSourceOptions } from './lib/data-source.options';
export { runMigrations } from './lib/migrate';
export { isTransientDatabaseError } from './lib/database-errors';
export type { ApiKeyRole, Task, TaskError, TaskReport } from './lib/entities';

// The states and every transition between them.
export { isTerminal, TASK_STATUSES, type TaskStatus } from './lib/task-status';
export {
  type CreateResult,
  type NewTask,
  type NewTaskRow,
  type PromotionResult,
  type QueueLimitRefusal,
  TaskStateMachine,
  type TransitionResult,
} from './lib/task-state-machine';

// What the use cases refuse, with stable codes.
export {
  IdempotencyConflictError,
  InvalidTransitionError,
  OwnerQueueFullError,
  TaskNotFoundError,
} from './lib/task.errors';
export { InvalidCursorError, type Page } from './lib/queries/keyset-cursor';

// Task types: payload schemas and defaults, shared by the api and the worker.
export {
  BUILTIN_TASK_TYPES,
  type DemoCrashPayload,
  type DemoSleepPayload,
  type SqlQueryPayload,
  taskTypesConfigSchema,
} from './lib/task-types/builtin-task-types';
export type { BackoffPolicy, TaskTypeDefinition, TaskTypesConfig } from './lib/task-types/task-type';
export { type PayloadCheck, TaskTypeRegistry } from './lib/task-types/task-type.registry';

// Running tasks (the worker): the executor, handlers and their failures, the sweeper, the promoter, the fleet.
export {
  ExecutionModule,
  type ExecutionModuleAsyncOptions,
  type ExecutionModuleOptions,
} from './lib/execution/execution.module';
export { WORKER_CONFIG } from './lib/execution/execution.constants';
export { type WorkerConfig, workerConfigSchema } from './lib/execution/worker.config';
export { handledType, resolveServedTypes } from './lib/execution/served-types';
export { HandlesTask, type TaskContext, type TaskHandler } from './lib/execution/task-handler';
export { RetryableError, TaskFailure, UnrecoverableError } from './lib/execution/task.errors';
export { TaskExecutor } from './lib/execution/task-executor';
export { WorkIntake } from './lib/execution/work-intake';
export { TaskSweeper } from './lib/execution/task-sweeper.service';
export { TaskPromoter } from './lib/execution/task-promoter.service';
export { WorkerRegistry } from './lib/execution/worker-registry.service';

// Retention of finished tasks: one round at a time across replicas.
export { type RetentionConfig, retentionConfigSchema } from './lib/retention/retention.config';
export { TaskRetentionModule, type TaskRetentionModuleAsyncOptions } from './lib/retention/task-retention.module';
export { type RetentionRound, TaskRetention } from './lib/retention/task-retention.service';

// The HTTP side's reads and writes beyond the state machine.
export { TaskQueriesModule } from './lib/queries/task-queries.module';
export { type TaskEventView, type TaskListQuery, TaskQueries } from './lib/queries/task.queries';
export { TaskReports } from './lib/queries/task-reports';
export { type TaskFeedEvent, type TaskUpdate, TaskUpdateFeed } from './lib/queries/task-update.feed';
export { TaskStoreMetrics } from './lib/queries/task-store.metrics';
export { TaskEventLog, type TaskEventSnapshot, type TaskStreamEvent } from './lib/stream/task-event-log';
export { type IssuedStreamToken, STREAM_TOKEN_TTL_MS, StreamTokens } from './lib/stream/stream-tokens.service';
export { ApiKeyService, hashApiKey, type IssuedApiKey, type Principal } from './lib/auth/api-key.service';
export { CreateTaskBatchCommand, type NewBatchTask } from './lib/commands/create-task-batch.command';

// Cron schedules: validation, the store, the firer every api and worker runs.
export { SchedulesModule, type SchedulesModuleAsyncOptions } from './lib/schedules/schedules.module';
export { type SchedulesConfig, schedulesConfigSchema } from './lib/schedules/schedules.config';
export { checkTimezone, CronExpression } from './lib/schedules/cron-expression';
export {
  type NewSchedule,
  type Schedule,
  type ScheduledTaskSpec,
  type ScheduleOverlap,
  type SchedulePatch,
  ScheduleStore,
} from './lib/schedules/schedule.store';
export { type FireRound, ScheduleFirer } from './lib/schedules/schedule-firer.service';
export { InvalidScheduleError, ScheduleNameTakenError, ScheduleNotFoundError } from './lib/schedules/schedule.errors';

// Operators: the worker fleet, reconcile, dead-letter redrive.
export { TasksAdminModule } from './lib/admin/tasks-admin.module';
export { WorkerFleetQuery, type WorkerStatus } from './lib/admin/worker-fleet.query';
export { ReconcileCommand, type ReconcileOptions, type ReconcileResult } from './lib/admin/reconcile.command';
export {
  RedriveDeadLettersCommand,
  type RedriveDeadLettersOptions,
  type RedriveDeadLettersResult,
} from './lib/admin/redrive-dead-letters.command';

// Per-owner quotas: maxRunning (held at the claim) and maxQueued (refused at submit).
export { type OwnerLimits, type OwnerLimitsChange, OwnerLimitsService } from './lib/limits/owner-limits.service';

// Rate limits shared by every replica.
export { RateLimitModule } from './lib/rate-limit/rate-limit.module';
export { DistributedRateLimiter, type RateLimitDecision } from './lib/rate-limit/distributed-rate-limiter';

// Completion webhooks: callback url checks, signing secrets, the dispatcher, reads of deliveries.
export { WebhooksModule, type WebhooksModuleAsyncOptions } from './lib/webhooks/webhooks.module';
export type { WebhooksModuleOptions } from './lib/webhooks/webhooks.constants';
export { type WebhooksConfig, webhooksConfigSchema } from './lib/webhooks/webhooks.config';
export {
  CallbackUrlRefused,
  checkCallbackUrl,
  isPublicAddress,
  MAX_CALLBACK_URL_LENGTH,
} from './lib/webhooks/callback-url.policy';
export { type RotatedSecret, WebhookSecrets } from './lib/webhooks/webhook-secrets.service';
export { WebhookDispatcher } from './lib/webhooks/webhook-dispatcher.service';
export {
  type FailingEndpoint,
  type WebhookAttemptView,
  WebhookDeliveries,
  type WebhookDeliveryView,
} from './lib/webhooks/webhook-deliveries.query';
