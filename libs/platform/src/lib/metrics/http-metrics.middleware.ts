import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import { MetricsService } from './metrics.service';

type Req = IncomingMessage & { route?: { path?: string }; baseUrl?: string };

/**
 * @internal What `observeFastify` needs of a Fastify instance (this lib does not depend on Fastify):
 * an `onRequest` hook, whose request knows its route pattern and whose reply has the raw response.
 */
export interface FastifyHooks {
  addHook(
    name: 'onRequest',
    hook: (
      req: { method: string; routeOptions?: { url?: string } },
      reply: { raw: ServerResponse },
      done: () => void,
    ) => void,
  ): unknown;
}

/**
 * @internal Counts every HTTP request and its duration by method, route pattern and status. The route
 * is the matched pattern (`/v1/tasks/:id`), never the raw URL, so labels stay bounded. Express (the
 * worker's health port) uses it as a middleware; Fastify (the api) through `observeFastify`, as its
 * middlewares see the raw request, which does not know its route.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  private readonly requests;
  private readonly duration;

  constructor(metrics: MetricsService) {
    this.requests = metrics.counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
    });
    this.duration = metrics.histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer HTTP requests (streams: until closed), by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
  }

  use(req: Req, res: ServerResponse, next: () => void): void {
    const started = process.hrtime.bigint();
    res.once('close', () =>
      this.observe(req.method, req.route?.path ? `${req.baseUrl ?? ''}${req.route.path}` : undefined, res, started),
    );
    next();
  }

  observeFastify(fastify: FastifyHooks): void {
    fastify.addHook('onRequest', (req, reply, done) => {
      const started = process.hrtime.bigint();
      // Streams (SSE) are written to the raw response: its close ends every request, answered by Fastify or not.
      reply.raw.once('close', () => this.observe(req.method, req.routeOptions?.url, reply.raw, started));
      done();
    });
  }

  private observe(method: string | undefined, route: string | undefined, res: ServerResponse, started: bigint): void {
    const labels = { method: method ?? 'GET', route: route ?? 'unmatched', status: String(res.statusCode) };
    this.requests.inc(labels);
    this.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
