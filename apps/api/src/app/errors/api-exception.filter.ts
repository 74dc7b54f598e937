import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { InvalidCursorError, isTransientDatabaseError } from '@tasksys/tasks';
import type { Response } from 'express';
import { ApiError } from './api.errors';

interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** Stable, for clients to branch on (`TASK.NOT_FOUND`). */
  code: string;
  /** The request field at fault, when there is one. */
  field?: string;
}

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

/** The database is unreachable, every pooled connection is busy, or too many submits wait for one: a 503 the client may retry, not a 500. */
function isDatabaseUnavailable(e: unknown): boolean {
  return (e as { code?: unknown })?.code === 'OVERLOADED' || isTransientDatabaseError(e);
}

const HTTP_CODES: Record<number, string> = {
  400: 'REQUEST.INVALID',
  401: 'AUTH.UNAUTHENTICATED',
  403: 'AUTH.FORBIDDEN',
  404: 'NOT_FOUND',
  413: 'REQUEST.TOO_LARGE',
  415: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

/**
 * The one place errors become HTTP answers, in Nest's shape `{statusCode, error, message}` plus
 * a stable `code`. Unknown errors are 500 and logged; their details never reach the client.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    if (body.statusCode === 503) this.logger.warn(`503: ${exception instanceof Error ? exception.message : String(exception)}`);
    else if (body.statusCode >= 500) this.logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
    if (body.statusCode === 503) res.setHeader('Retry-After', '1');
    if (res.headersSent) {
      // An SSE stream that failed after it started: end it; the client reconnects.
      res.end();
      return;
    }
    res.status(body.statusCode).json(body);
  }

  private toBody(e: unknown): ErrorBody {
    if (e instanceof ApiError) {
      return {
        statusCode: e.status,
        error: REASON[e.status] ?? 'Error',
        message: e.message,
        code: e.code,
        ...('field' in e ? { field: String(e.field) } : {}),
      };
    }
    if (e instanceof InvalidCursorError) {
      return { statusCode: 400, error: REASON[400], message: `cursor: ${e.message}`, code: 'REQUEST.INVALID', field: 'cursor' };
    }
    if (e instanceof HttpException) {
      const status = e.getStatus();
      const response = e.getResponse();
      const raw = typeof response === 'string' ? response : (response as { message?: unknown }).message;
      const message = Array.isArray(raw) ? raw.join('; ') : typeof raw === 'string' ? raw : e.message;
      if (status === 400 && typeof response === 'object' && /JSON/.test(message) && !('code' in (response as object))) {
        // body-parser's SyntaxError, which Nest turns into a plain BadRequestException before filters run.
        return { statusCode: 400, error: REASON[400], message: `body: malformed JSON (${message})`, code: 'REQUEST.MALFORMED_JSON', field: 'body' };
      }
      const code = e instanceof ThrottlerException ? 'RATE_LIMITED' : (HTTP_CODES[status] ?? `HTTP.${status}`);
      return { statusCode: status, error: REASON[status] ?? e.name, message, code };
    }
    // body-parser errors carry an HTTP status and a type.
    const bp = e as { type?: string; status?: number };
    if (bp?.type === 'entity.too.large') {
      return { statusCode: 413, error: REASON[413], message: 'body: request body is larger than the limit', code: 'REQUEST.TOO_LARGE', field: 'body' };
    }
    if (bp?.type === 'entity.parse.failed') {
      return { statusCode: 400, error: REASON[400], message: 'body: malformed JSON', code: 'REQUEST.MALFORMED_JSON', field: 'body' };
    }
    if (typeof bp?.status === 'number' && bp.status >= 400 && bp.status < 500) {
      return { statusCode: bp.status, error: REASON[bp.status] ?? 'Error', message: `body: ${(e as Error).message}`, code: HTTP_CODES[bp.status] ?? `HTTP.${bp.status}`, field: 'body' };
    }
    if (isDatabaseUnavailable(e)) {
      return { statusCode: 503, error: REASON[503], message: 'the database is unavailable or busy; retry shortly', code: 'SERVICE.UNAVAILABLE' };
    }
    return { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, error: REASON[500], message: 'internal error', code: 'INTERNAL' };
  }
}
