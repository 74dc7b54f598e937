import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigurableModuleBuilder, type DynamicModule, Module, RequestMethod } from '@nestjs/common';
import { LoggerModule, type Params } from 'nestjs-pino';
import { z } from 'zod';

/** @internal A request url for the log, with the value of a `token` query parameter masked. */
export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

export const loggingConfigSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type LoggingConfig = z.infer<typeof loggingConfigSchema>;

export interface LoggingOptions {
  level: LoggingConfig['LOG_LEVEL'];
  /** Request paths not worth a log line each (probes, scrapes). */
  quietPaths?: string[];
  /**
   * Run pino-http on every request (default true): a request id and a per-request logger. Off, where
   * requests are only probes and scrapes (the worker): pino-http keeps its context in an
   * AsyncLocalStorage, whose first use turns on promise hooks for the whole process, about 9% of a
   * busy worker's CPU (a hook call for every promise the task path makes).
   */
  requestContext?: boolean;
}

/** @internal Injection token of the LoggingOptions. */
export const LOGGING_OPTIONS = Symbol('LOGGING_OPTIONS');

const definition = new ConfigurableModuleBuilder<LoggingOptions>({
  optionsInjectionToken: LOGGING_OPTIONS,
})
  .setClassMethodName('forRoot')
  .build();

/** `LoggingModule.forRootAsync(...)`: the options from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type LoggingModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * @internal Holds the LoggingOptions in a module of their own, so that nestjs-pino's factory (in
 * its module) can import and inject them.
 */
@Module({ exports: [LOGGING_OPTIONS] })
class LoggingOptionsModule extends definition.ConfigurableModuleClass {}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const REQUEST_LOG_LEVELS = new Set<string>(['info', 'debug', 'trace']);

/** nestjs-pino's settings for `options`. */
function pinoParams({ level, quietPaths = [], requestContext = true }: LoggingOptions): Params {
  return {
    // Excluding every route keeps the middleware (and its AsyncLocalStorage) off every request.
    ...(requestContext ? {} : { exclude: [{ path: '{*all}', method: RequestMethod.ALL }] }),
    pinoHttp: {
      level,
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // pino-http binds `req` to a child logger on every request, logged or not: keep that
      // cheap. No headers, so no credential can reach a log; the one credential a url may carry, a
      // stream token (`?token=`, for EventSource), is masked.
      serializers: {
        req: (req: { id?: unknown; method?: string; url?: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      },
      // Request lines are `info`: above that level they could never be written.
      autoLogging: REQUEST_LOG_LEVELS.has(level)
        ? { ignore: (req: IncomingMessage) => quietPaths.some((p) => req.url?.startsWith(p)) }
        : false,
    },
  };
}

/**
 * Structured JSON logs (pino) for Nest's logger and every HTTP request: a request id (taken
 * from a sane `X-Request-Id` or generated, echoed back); request lines carry method, url and
 * status, never headers (credentials).
 */
@Module({})
export class LoggingModule {
  static forRoot(options: LoggingOptions): DynamicModule {
    return LoggingModule.over(LoggingOptionsModule.forRoot(options));
  }

  static forRootAsync(options: LoggingModuleAsyncOptions): DynamicModule {
    return LoggingModule.over(LoggingOptionsModule.forRootAsync(options));
  }

  private static over(options: DynamicModule): DynamicModule {
    return {
      module: LoggingModule,
      imports: [LoggerModule.forRootAsync({ imports: [options], inject: [LOGGING_OPTIONS], useFactory: pinoParams })],
      exports: [LoggerModule],
    };
  }
}
