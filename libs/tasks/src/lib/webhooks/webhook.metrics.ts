import type { Counter, Histogram } from 'prom-client';
import type { MetricsService } from '@tasksys/platform';
import type { AttemptOutcome } from './webhook-sender';

/** @internal `tasksys_webhook_deliveries_total{outcome}`, `tasksys_webhook_attempts_total{outcome}`, attempt latency. */
export class WebhookMetrics {
  private readonly deliveries: Counter<'outcome'>;
  private readonly attempts: Counter<'outcome'>;
  private readonly latency: Histogram<'outcome'>;

  constructor(metrics: MetricsService) {
    this.deliveries = metrics.counter({
      name: 'tasksys_webhook_deliveries_total',
      help: 'Webhook deliveries finished by this process: succeeded, or failed after the retry period',
      labelNames: ['outcome'] as const,
    });
    this.attempts = metrics.counter({
      name: 'tasksys_webhook_attempts_total',
      help: 'Webhook attempts by outcome: success, http_error, redirect, timeout, connection_error, refused',
      labelNames: ['outcome'] as const,
    });
    this.latency = metrics.histogram({
      name: 'tasksys_webhook_attempt_duration_seconds',
      help: 'Duration of one webhook attempt (resolve, connect, answer)',
      labelNames: ['outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
  }

  attempted(outcome: AttemptOutcome): void {
    this.attempts.inc({ outcome: outcome.kind });
    this.latency.observe({ outcome: outcome.kind }, outcome.durationMs / 1000);
  }

  finished(outcome: 'succeeded' | 'failed'): void {
    this.deliveries.inc({ outcome });
  }
}
