export { ApiError, type ApiErrorBody, WaitTimeoutError } from './lib/api-error';
export { parseEventStream, type ServerSentEvent } from './lib/event-stream';
export { type StreamOptions, TasksysClient, type TasksysClientOptions, type WaitOptions } from './lib/tasksys-client';
export type {
  ApiKey,
  BrokerMessage,
  BrokerMessageList,
  CreateTaskRequest,
  DeadLetterRedrive,
  ListTasksQuery,
  Queue,
  QueueList,
  Reconcile,
  ReconcileRequest,
  RedriveDeadLettersRequest,
  RedriveRequest,
  Report,
  ReportPage,
  Schedule,
  SchedulePage,
  SubmitOptions,
  Task,
  TaskEvent,
  TaskPage,
  TaskPayload,
  TaskProgress,
  TaskStatus,
  TaskStreamEvent,
  TaskType,
  UnroutedRedrive,
  Worker,
  WorkerFleet,
} from './lib/types';
export { isTerminal, TERMINAL_STATUSES } from './lib/types';
export { verifyWebhook, type WebhookHeaders, WebhookVerificationError } from './lib/webhooks';
/** The generated types of every route and schema, for calls through `client.raw`. */
export type { components, paths } from './generated/openapi';
