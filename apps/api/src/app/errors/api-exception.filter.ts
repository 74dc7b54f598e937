import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { AppError, ERROR_CODES, type ErrorCode } from '@tasksys/platform';
import { isTransientDatabaseError } from '@tasksys/tasks';

/** A code of the catalogue, or `HTTP.<status>` for an HttpException of a status no code stands for. */
type AnswerCode = ErrorCode | `HTTP.${number}`;

interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** Stable, for clients to branch on (`TASK.NOT_FOUND`). */
  code: AnswerCode;
  /** The request field at fault, when there is one. */
  field?: string;
}

/**
 * THE table from error codes to HTTP statuses: what each code the api answers with is in HTTP. An
 * AppError whose code is not here (a publish that failed, a topology mismatch) is unexpected: a 500.
 */
const HTTP_STATUS: ReadonlyMap<string, HttpStatus> = new Map<ErrorCode, HttpStatus>([
  [ERROR_CODES.REQUEST_INVALID, HttpStatus.BAD_REQUEST],
  [ERROR_CODES.REQUEST_MALFORMED_JSON, HttpStatus.BAD_REQUEST],
  [ERROR_CODES.AUTH_UNAUTHENTICATED, HttpStatus.UNAUTHORIZED],
  [ERROR_CODES.AUTH_FORBIDDEN, HttpStatus.FORBIDDEN],
  [ERROR_CODES.NOT_FOUND, HttpStatus.NOT_FOUND],
  [ERROR_CODES.TASK_NOT_FOUND, HttpStatus.NOT_FOUND],
  [ERROR_CODES.TASK_INVALID_TRANSITION, HttpStatus.CONFLICT],
  [ERROR_CODES.TASK_IDEMPOTENCY_CONFLICT, HttpStatus.CONFLICT],
  [ERROR_CODES.SCHEDULE_NOT_FOUND, HttpStatus.NOT_FOUND],
  [ERROR_CODES.SCHEDULE_NAME_TAKEN, HttpStatus.CONFLICT],
  [ERROR_CODES.REQUEST_TOO_LARGE, HttpStatus.PAYLOAD_TOO_LARGE],
  [ERROR_CODES.REQUEST_UNSUPPORTED_MEDIA_TYPE, HttpStatus.UNSUPPORTED_MEDIA_TYPE],
  [ERROR_CODES.RATE_LIMITED, HttpStatus.TOO_MANY_REQUESTS],
  [ERROR_CODES.OWNER_MAX_QUEUED, HttpStatus.TOO_MANY_REQUESTS],
  [ERROR_CODES.INTERNAL, HttpStatus.INTERNAL_SERVER_ERROR],
  [ERROR_CODES.SERVICE_UNAVAILABLE, HttpStatus.SERVICE_UNAVAILABLE],
  [ERROR_CODES.BROKER_UNAVAILABLE, HttpStatus.SERVICE_UNAVAILABLE],
]);

/**
 * The code of an HttpException (Nest's router, guards, body parsing), by its status: these codes'
 * statuses in the table above. Any other status answers `HTTP.<status>`.
 */
const CODE_OF_STATUS: ReadonlyMap<number, ErrorCode> = new Map(
  [
    ERROR_CODES.REQUEST_INVALID,
    ERROR_CODES.AUTH_UNAUTHENTICATED,
    ERROR_CODES.AUTH_FORBIDDEN,
    ERROR_CODES.NOT_FOUND,
    ERROR_CODES.REQUEST_TOO_LARGE,
    ERROR_CODES.REQUEST_UNSUPPORTED_MEDIA_TYPE,
    ERROR_CODES.RATE_LIMITED,
  ].map((code) => [statusOf(code), code]),
);

/** Nest's `error` field: the reason phrase of the status. */
const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Whether the table has `code` (an AppError's code is a catalogue code or, for handler failures, not answered). */
function isAnswered(code: string): code is ErrorCode {
  return HTTP_STATUS.has(code);
}

function statusOf(code: ErrorCode): HttpStatus {
  return HTTP_STATUS.get(code) ?? HttpStatus.INTERNAL_SERVER_ERROR;
}

function codeOfStatus(status: number): AnswerCode {
  return CODE_OF_STATUS.get(status) ?? `HTTP.${status}`;
}

/** An answer with the status the table gives `code`. */
function answer(code: ErrorCode, message: string, field?: string): ErrorBody {
  const status = statusOf(code);
  return {
    statusCode: status,
    error: REASON[status] ?? 'Error',
    message,
    code,
    ...(field !== undefined ? { field } : {}),
  };
}

/** The database is unreachable, every pooled connection is busy, or too many submits wait for one: a 503 the client may retry, not a 500. */
function isDatabaseUnavailable(e: unknown): boolean {
  return (e as { code?: unknown })?.code === ERROR_CODES.OVERLOADED || isTransientDatabaseError(e);
}

/**
 * The one place errors become HTTP answers, in Nest's shape `{statusCode, error, message}` plus
 * a stable `code`. Unknown errors are 500 and logged; their details never reach the client.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<FastifyReply>();
    const body = this.toBody(exception);
    if (body.statusCode === 503)
      this.logger.warn(`503: ${exception instanceof Error ? exception.message : String(exception)}`);
    else if (body.statusCode >= 500)
      this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    if (res.raw.headersSent) {
      // An SSE stream that failed after it started (Nest writes it to the raw response): end it; the client reconnects.
      res.raw.end();
      return;
    }
    if (body.statusCode === 503) res.header('Retry-After', '1');
    // An error that knows when to come back (an owner at its maxQueued) says so.
    const retryAfter = (exception as { retryAfterSeconds?: unknown })?.retryAfterSeconds;
    if (exception instanceof AppError && typeof retryAfter === 'number') res.header('Retry-After', String(retryAfter));
    res.status(body.statusCode).send(body);
  }

  private toBody(e: unknown): ErrorBody {
    if (e instanceof AppError && isAnswered(e.code)) return answer(e.code, e.message, e.field);
    if (e instanceof HttpException) {
      const status = e.getStatus();
      const response = e.getResponse();
      const raw = typeof response === 'string' ? response : (response as { message?: unknown }).message;
      const message = Array.isArray(raw) ? raw.join('; ') : typeof raw === 'string' ? raw : e.message;
      // Fastify's refusals of a body, which Nest hands on as bare HttpExceptions of their status.
      if (status === 413)
        return answer(ERROR_CODES.REQUEST_TOO_LARGE, 'body: request body is larger than the limit', 'body');
      if (status === 415)
        return answer(ERROR_CODES.REQUEST_UNSUPPORTED_MEDIA_TYPE, 'body: Content-Type must be application/json');
      return { statusCode: status, error: REASON[status] ?? e.name, message, code: codeOfStatus(status) };
    }
    if (isDatabaseUnavailable(e))
      return answer(ERROR_CODES.SERVICE_UNAVAILABLE, 'the database is unavailable or busy; retry shortly');
    return answer(ERROR_CODES.INTERNAL, 'internal error');
  }
}
