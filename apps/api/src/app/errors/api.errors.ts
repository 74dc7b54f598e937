import type { TaskStatus } from '@tasksys/tasks';

/**
 * Errors the api's use cases raise, each with a stable code clients may branch on. The
 * exception filter maps them to HTTP; nothing else decides status codes for them.
 */
export abstract class ApiError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
}

export class TaskNotFoundError extends ApiError {
  readonly code = 'TASK.NOT_FOUND';
  readonly status = 404;
  constructor(id: string) {
    super(`task ${id} not found`);
  }
}

export class InvalidTransitionError extends ApiError {
  readonly code = 'TASK.INVALID_TRANSITION';
  readonly status = 409;
  constructor(
    readonly action: string,
    readonly current: TaskStatus,
  ) {
    super(`cannot ${action} a task that is ${current}`);
  }
}

export class IdempotencyConflictError extends ApiError {
  readonly code = 'TASK.IDEMPOTENCY_CONFLICT';
  readonly status = 409;
  constructor() {
    super('Idempotency-Key was already used with a different request body');
  }
}

/** A request that is wrong in one named place (`payload.ms`, `tasks[3].type`, `cursor`). */
export class RequestValidationError extends ApiError {
  readonly code = 'REQUEST.INVALID';
  readonly status = 400;
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(detail.startsWith(field) ? detail : `${field}: ${detail}`);
  }
}
