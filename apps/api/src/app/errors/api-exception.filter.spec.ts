import {
  type ArgumentsHost,
  ConflictException,
  HttpException,
  Logger,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { BrokerUnavailableError, PublishError } from '@tasksys/messaging';
import {
  IdempotencyConflictError,
  InvalidCursorError,
  InvalidTransitionError,
  TaskNotFoundError,
} from '@tasksys/tasks';
import { ApiExceptionFilter } from './api-exception.filter';
import { MalformedJsonError, RequestValidationError } from './request-validation.error';

/** What the filter wrote: status, headers and body. */
function answerTo(exception: unknown): {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
} {
  const written = { status: 0, headers: {} as Record<string, string>, body: {} as Record<string, unknown> };
  const reply = {
    raw: { headersSent: false, end: () => undefined },
    header: (name: string, value: string) => void (written.headers[name] = value),
    status(code: number) {
      written.status = code;
      return this;
    },
    send: (body: Record<string, unknown>) => void (written.body = body),
  };
  const host = { switchToHttp: () => ({ getResponse: () => reply }) } as unknown as ArgumentsHost;
  new ApiExceptionFilter().catch(exception, host);
  return written;
}

describe('ApiExceptionFilter: every code keeps its HTTP status and Nest body shape', () => {
  // The 5xx it logs are expected here.
  beforeAll(() => Logger.overrideLogger(false));

  it.each([
    ['TaskNotFoundError', 404, 'Not Found', 'TASK.NOT_FOUND', new TaskNotFoundError('t1')],
    [
      'InvalidTransitionError',
      409,
      'Conflict',
      'TASK.INVALID_TRANSITION',
      new InvalidTransitionError('start', 'cancelled'),
    ],
    ['IdempotencyConflictError', 409, 'Conflict', 'TASK.IDEMPOTENCY_CONFLICT', new IdempotencyConflictError()],
    [
      'BrokerUnavailableError',
      503,
      'Service Unavailable',
      'BROKER.UNAVAILABLE',
      new BrokerUnavailableError('not connected'),
    ],
    ['NotFoundException (no route)', 404, 'Not Found', 'NOT_FOUND', new NotFoundException('Cannot GET /x')],
    ['UnauthorizedException', 401, 'Unauthorized', 'AUTH.UNAUTHENTICATED', new UnauthorizedException('no key')],
    ['ThrottlerException', 429, 'Too Many Requests', 'RATE_LIMITED', new ThrottlerException()],
    ['ConflictException (no code for its status)', 409, 'Conflict', 'HTTP.409', new ConflictException('x')],
  ])('%s: %i %s, code %s', (_, status, error, code, exception) => {
    const r = answerTo(exception);
    expect([r.status, r.body]).toEqual([
      status,
      { statusCode: status, error, message: (exception as Error).message, code },
    ]);
  });

  it('names the field of a request error, and of a forged cursor, with the message clients saw before', () => {
    expect(answerTo(new RequestValidationError('payload.ms', 'must be at least 0')).body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'payload.ms: must be at least 0',
      code: 'REQUEST.INVALID',
      field: 'payload.ms',
    });
    expect(answerTo(new InvalidCursorError()).body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'cursor: cursor is not a cursor returned by this api',
      code: 'REQUEST.INVALID',
      field: 'cursor',
    });
  });

  it('answers 503 SERVICE.UNAVAILABLE with Retry-After for an overloaded batcher and an unreachable database', () => {
    const overloaded = Object.assign(new Error('5 calls already waiting'), { code: 'OVERLOADED' });
    for (const e of [overloaded, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })]) {
      const r = answerTo(e);
      expect([r.status, r.headers['Retry-After'], r.body['code']]).toEqual([503, '1', 'SERVICE.UNAVAILABLE']);
    }
  });

  it('words Fastify’s refusals of a body (bare HttpExceptions from Nest) as this api’s codes', () => {
    expect(answerTo(new HttpException('Request body is too large', 413)).body).toMatchObject({
      statusCode: 413,
      code: 'REQUEST.TOO_LARGE',
      field: 'body',
    });
    expect(answerTo(new HttpException('Unsupported Media Type: text/plain', 415)).body).toMatchObject({
      statusCode: 415,
      code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
      message: 'body: Content-Type must be application/json',
    });
    expect(answerTo(new MalformedJsonError()).body).toMatchObject({
      statusCode: 400,
      code: 'REQUEST.MALFORMED_JSON',
      field: 'body',
    });
  });

  it('hides what it does not answer for: an AppError of no HTTP meaning and a bug are a 500 INTERNAL', () => {
    for (const e of [new PublishError('timeout', 'no confirm'), new TypeError('x is undefined')]) {
      expect(answerTo(e).body).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'internal error',
        code: 'INTERNAL',
      });
    }
  });
});
