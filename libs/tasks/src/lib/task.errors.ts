import { AppError, ERROR_CODES } from '@tasksys/platform';
import type { TaskStatus } from './task-status';

/**
 * What the task use cases refuse, each with a stable code from ERROR_CODES. They know nothing of
 * transports: the api's exception filter decides what each code is in HTTP.
 */

/** No such task, or not one the caller may see (owners never learn whether another owner's task exists). */
export class TaskNotFoundError extends AppError {
  readonly code = ERROR_CODES.TASK_NOT_FOUND;

  constructor(readonly taskId: string) {
    super(`task ${taskId} not found`);
  }
}

/** The task's state does not allow the action (docs/ARCHITECTURE.md, "Task states"). */
export class InvalidTransitionError extends AppError {
  readonly code = ERROR_CODES.TASK_INVALID_TRANSITION;

  constructor(
    readonly action: string,
    readonly current: TaskStatus,
  ) {
    super(`cannot ${action} a task that is ${current}`);
  }
}

/** An idempotency key seen before with another request body. */
export class IdempotencyConflictError extends AppError {
  readonly code = ERROR_CODES.TASK_IDEMPOTENCY_CONFLICT;

  constructor() {
    super('Idempotency-Key was already used with a different request body');
  }
}

/** Seconds a client refused at maxQueued is told to wait: when its tasks finish is unknown; a retry every few seconds costs little. */
export const QUEUE_FULL_RETRY_AFTER_SECONDS = 5;

/** A submit that would take its owner past maxQueued non-terminal tasks; nothing was written. */
export class OwnerQueueFullError extends AppError {
  readonly code = ERROR_CODES.OWNER_MAX_QUEUED;
  readonly retryAfterSeconds = QUEUE_FULL_RETRY_AFTER_SECONDS;

  constructor(
    readonly owner: string,
    readonly maxQueued: number,
    readonly queued: number,
    readonly adding = 1,
  ) {
    super(
      adding > 1
        ? `owner ${owner} has ${queued} non-terminal tasks: ${adding} more would pass its maxQueued ${maxQueued}; nothing was written`
        : `owner ${owner} is at its maxQueued ${maxQueued} (${queued} non-terminal tasks); retry once some finish`,
    );
  }
}
