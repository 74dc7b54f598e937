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
