import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
// The plugin's declarations add `reply.sendFile`.
import type {} from '@fastify/static';
import type { FastifyReply } from 'fastify';

/** URL prefix of the web console. */
export const CONSOLE_PATH = '/console';

/**
 * The console's page calls only this origin. The admin key lives in localStorage, so no script
 * from elsewhere may run on the page.
 */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Where the console's build (apps/console, `index.html` and `assets/`) is: CONSOLE_DIR, else next to
 * the api bundle (`dist/apps/api/console`, copied there by the api build), else the console
 * project's own output (`dist/apps/console`, from the workspace root). Null when none has it.
 */
export function findConsoleDir(configured?: string): string | null {
  const candidates = configured
    ? [resolve(configured)]
    : [join(__dirname, 'console'), resolve('dist/apps/api/console'), resolve('dist/apps/console')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? null;
}

/**
 * Serves the console's static files at /console, before any Nest route or guard: the page itself
 * needs no key (it asks for the admin key and sends it with every API call). Without a build,
 * /console answers 503 saying how to build it.
 */
export function mountConsole(app: NestFastifyApplication, configured?: string): string | null {
  const logger = new Logger('Console');
  const dir = findConsoleDir(configured);
  if (!dir) {
    logger.warn(`no console build found${configured ? ` in CONSOLE_DIR=${configured}` : ''}: run \`npm run build\``);
    const notBuilt = (_req: unknown, reply: FastifyReply) =>
      reply
        .status(503)
        .type('text/plain')
        .send('The console is not built: run `npm run build` (or set CONSOLE_DIR).\n');
    const fastify = app.getHttpAdapter().getInstance();
    fastify.get(CONSOLE_PATH, notBuilt);
    fastify.get(`${CONSOLE_PATH}/*`, notBuilt);
    return null;
  }
  // @fastify/static serves /console/<file>; a missing file falls through to the api's 404.
  app.useStaticAssets({
    root: dir,
    prefix: CONSOLE_PATH,
    index: 'index.html',
    // The cache headers are set here, not by the plugin's defaults.
    cacheControl: false,
    // @fastify/static passes the reply (Nest's option type still says a raw response).
    setHeaders: (res, path) => {
      const reply = res as unknown as FastifyReply;
      reply.header('Content-Security-Policy', CSP);
      reply.header('X-Content-Type-Options', 'nosniff');
      reply.header('Referrer-Policy', 'no-referrer');
      // Hashed asset names never change content; the page itself is always revalidated.
      reply.header('Cache-Control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
    },
  });
  // The router ignores trailing slashes, so /console and /console/ reach this one route (not the
  // plugin's /console/*): /console redirects (301) as express's serve-static did, so that the page's
  // relative asset urls resolve under /console/; /console/ is the page.
  app
    .getHttpAdapter()
    .getInstance()
    .get(CONSOLE_PATH, (req, reply) => {
      const [path, query] = req.url.split('?', 2);
      if (!path.endsWith('/')) return reply.redirect(`${CONSOLE_PATH}/${query === undefined ? '' : `?${query}`}`, 301);
      return reply.sendFile('index.html');
    });
  return dir;
}
