import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import { MetricsService } from './metrics.service';

type Req = IncomingMessage & { route?: { path?: string }; baseUrl?: string };

/**
 * @internal Counts every HTTP request and its duration by method, route pattern and status. The route
 * is the matched pattern (`/v1/tasks/:id`), never the raw URL, so labels stay bounded.
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
    res.once('close', () => {
      const labels = {
        method: req.method ?? 'GET',
        route: req.route?.path ? `${req.baseUrl ?? ''}${req.route.path}` : 'unmatched',
        status: String(res.statusCode),
      };
      this.requests.inc(labels);
      this.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  }
}
