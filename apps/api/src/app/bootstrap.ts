import { Logger as NestLogger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { mountConsole } from './admin/console/console-static';
import { type ApiConfig, apiConfigSchema } from './api.config';
import { AppModule } from './app.module';
import { setupSwagger } from './swagger';

/**
 * Builds the api exactly as production runs it (tests call this too). Throws ConfigurationError,
 * naming the variable, before anything connects when the environment is invalid.
 */
export async function createApi(env: Record<string, string | undefined> = {}): Promise<NestExpressApplication> {
  const config = validateEnv(apiConfigSchema)({ ...process.env, ...env });
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot({ env }), {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.useBodyParser('json', { limit: config.BODY_LIMIT });
  app.enableShutdownHooks();
  app.set('trust proxy', false);
  app.disable('x-powered-by');
  setupSwagger(app);
  mountConsole(app, config.CONSOLE_DIR);
  // Node closes an idle keep-alive connection after 5 s, and a client (or load balancer) that
  // sends on it at that moment gets ECONNRESET (seen in the bench at 500 submits/s). Idle
  // connections stay open longer than common proxies keep theirs (60 s), so the client closes first.
  const server = app.getHttpServer();
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return app;
}

/** main.ts: start listening, or print a configuration problem and exit 1 (no stack trace). */
export async function runApi(
  io: { stderr: (line: string) => void } = { stderr: (l) => process.stderr.write(l) },
): Promise<NestExpressApplication | null> {
  try {
    const app = await createApi();
    const port = app.get(ConfigService<ApiConfig, true>).get('PORT', { infer: true });
    await app.listen(port);
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
