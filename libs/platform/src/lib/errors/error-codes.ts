/**
 * Every error code the system itself produces, in one place. Codes are stable: clients branch on
 * them (HTTP answers), they are stored on tasks (`tasks.error.code`) and they travel with dead
 * letters (`x-reason-code`), so a value never changes once released; add new ones instead.
 *
 * Handlers define codes of their own for their failures (`DEMO.FATAL`, `SQL.TIMEOUT`): those stay
 * with the handler (see TaskFailure in libs/tasks); the built-in ones are here.
 */
export const ERROR_CODES = {
  // Requests (the api)
  /** A request that is wrong in one named place (`field`). */
  REQUEST_INVALID: 'REQUEST.INVALID',
  REQUEST_MALFORMED_JSON: 'REQUEST.MALFORMED_JSON',
  REQUEST_TOO_LARGE: 'REQUEST.TOO_LARGE',
  REQUEST_UNSUPPORTED_MEDIA_TYPE: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  AUTH_UNAUTHENTICATED: 'AUTH.UNAUTHENTICATED',
  AUTH_FORBIDDEN: 'AUTH.FORBIDDEN',
  /** No such route (a task that is not there is TASK_NOT_FOUND). */
  NOT_FOUND: 'NOT_FOUND',
  RATE_LIMITED: 'RATE_LIMITED',
  /** The database is unreachable or too busy: retry shortly. */
  SERVICE_UNAVAILABLE: 'SERVICE.UNAVAILABLE',
  /** Anything unexpected; its details stay in the log. */
  INTERNAL: 'INTERNAL',

  // Tasks: use cases
  TASK_NOT_FOUND: 'TASK.NOT_FOUND',
  TASK_INVALID_TRANSITION: 'TASK.INVALID_TRANSITION',
  TASK_IDEMPOTENCY_CONFLICT: 'TASK.IDEMPOTENCY_CONFLICT',
  /** A submit that would take its owner past its maxQueued non-terminal tasks (an admin's quota). */
  OWNER_MAX_QUEUED: 'OWNER.MAX_QUEUED',

  // Schedules: use cases
  SCHEDULE_NOT_FOUND: 'SCHEDULE.NOT_FOUND',
  /** The owner has a schedule of that name already. */
  SCHEDULE_NAME_TAKEN: 'SCHEDULE.NAME_TAKEN',

  // Tasks: failures of a run, stored on the task and on its dead letter
  /** Default of RetryableError. */
  TASK_RETRYABLE: 'TASK.RETRYABLE',
  /** Default of UnrecoverableError. */
  TASK_UNRECOVERABLE: 'TASK.UNRECOVERABLE',
  TASK_TIMEOUT: 'TASK.TIMEOUT',
  /** A handler threw something that is not a TaskFailure. */
  TASK_HANDLER_ERROR: 'TASK.HANDLER_ERROR',
  TASK_NO_HANDLER: 'TASK.NO_HANDLER',
  TASK_INVALID_PAYLOAD: 'TASK.INVALID_PAYLOAD',
  /** Its workers died on every attempt (a crash loop). */
  TASK_ABANDONED: 'TASK.ABANDONED',

  // Worker: dead-letter reasons that are not a task's failure
  /** The same delivery failed with an unexpected error (a bug) again and again. */
  WORKER_INTERNAL_ERROR: 'WORKER.INTERNAL_ERROR',
  /** More calls wait for a statement than a batcher accepts: shed load. */
  OVERLOADED: 'OVERLOADED',

  // Messages that are not task messages (dead-lettered with the reason)
  MESSAGE_NOT_JSON: 'MESSAGE.NOT_JSON',
  MESSAGE_INVALID: 'MESSAGE.INVALID',
  MESSAGE_UNKNOWN_VERSION: 'MESSAGE.UNKNOWN_VERSION',

  // The broker
  BROKER_UNAVAILABLE: 'BROKER.UNAVAILABLE',
  MESSAGING_TOPOLOGY_MISMATCH: 'MESSAGING.TOPOLOGY_MISMATCH',
  MESSAGING_PUBLISH_FAILED: 'MESSAGING.PUBLISH_FAILED',

  // Start-up
  CONFIG_INVALID: 'CONFIG.INVALID',
} as const;

/** One of the codes of ERROR_CODES. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];
