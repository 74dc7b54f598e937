import { Logger as NestLogger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { mountConsole } from './admin/console/console-static';
import { type ApiConfig, apiConfigSchema } from './api.config';
import { AppModule } from './app.module';
import { registerJsonBodies } from './errors/json-body';
import { createHttpAdapter } from './http-adapter';
import { setupSwagger } from './swagger';

/**
 * Builds the api exactly as production runs it (tests call this too). Throws ConfigurationError,
 * naming the variable, before anything connects when the environment is invalid.
 */
export async function createApi(env: Record<string, string | undefined> = {}): Promise<NestFastifyApplication> {
  const config = validateEnv(apiConfigSchema)({ ...process.env, ...env });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ env }),
    createHttpAdapter(config.BODY_LIMIT),
    { bodyParser: false, bufferLogs: true, abortOnError: false },
  );
  app.useLogger(app.get(Logger));
  registerJsonBodies(app.getHttpAdapter().getInstance(), config.BODY_LIMIT);
  // The matched route pattern on the raw request, where express left it: the HTTP server span of a
  // trace is named by it (libs/platform, otel-backend.ts: `POST /v1/tasks`, not `POST`).
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (req, _reply, done) => {
      const url = req.routeOptions?.url;
      if (url) (req.raw as typeof req.raw & { route?: { path: string } }).route = { path: url };
      done();
    });
  app.enableShutdownHooks();
  setupSwagger(app);
  mountConsole(app, config.CONSOLE_DIR);
  app.getHttpServer().headersTimeout = 66_000;
  return app;
}

/** main.ts: start listening, or print a configuration problem and exit 1 (no stack trace). */
export async function runApi(
  io: { stderr: (line: string) => void } = { stderr: (l) => process.stderr.write(l) },
): Promise<NestFastifyApplication | null> {
  try {
    const app = await createApi();
    const port = app.get(ConfigService<ApiConfig, true>).get('PORT', { infer: true });
    await listenEverywhere(app, port);
    new NestLogger('Api').log(`listening on :${port} (docs at /docs)`);
    return app;
  } catch (err) {
    if (err instanceof ConfigurationError) {
      io.stderr(`${err.message}\n`);
      process.exitCode = 1;
      return null;
    }
    throw err;
  }
}

/**
 * Every address, as express (Node's `listen(port)`) did: Fastify would take localhost only. `::`
 * covers IPv4 too on a dual-stack host; a host without IPv6 gets `0.0.0.0`.
 */
async function listenEverywhere(app: NestFastifyApplication, port: number): Promise<void> {
  try {
    await app.listen(port, '::');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
    await app.listen(port, '0.0.0.0');
  }
}
