import { AppError, ERROR_CODES } from '@tasksys/platform';

/** A request that is wrong in one named place (`payload.ms`, `tasks[3].type`, `Idempotency-Key`); the message names it first. */
export class RequestValidationError extends AppError {
  readonly code = ERROR_CODES.REQUEST_INVALID;
  declare readonly field: string;

  constructor(field: string, detail: string) {
    super(detail.startsWith(field) ? detail : `${field}: ${detail}`, { field });
  }
}

/** A body that is not JSON although its Content-Type says so. */
export class MalformedJsonError extends AppError {
  readonly code = ERROR_CODES.REQUEST_MALFORMED_JSON;
  declare readonly field: string;

  constructor() {
    super('body: malformed JSON', { field: 'body' });
  }
}
