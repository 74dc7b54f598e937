import type { Counter } from 'prom-client';
import type { MetricsService } from '@tasksys/platform';
import type { OutboxRelayService } from './outbox/outbox-relay.service';
import type { PublisherStats, TaskPublisher } from './publishing/task.publisher';

/**
 * @internal Prometheus view of the publisher's own counters (`tasksys_publish_total{result}`), read at
 * scrape time so the hot publish path keeps plain increments.
 */
export function registerPublisherMetrics(metrics: MetricsService, publisher: TaskPublisher): void {
  const seen: Partial<Record<keyof PublisherStats, number>> = {};
  const results: (keyof PublisherStats)[] = ['confirmed', 'nacked', 'returned', 'timeouts', 'failed'];
  metrics.counter({
    name: 'tasksys_publish_total',
    help: 'Publishes by result: confirmed, nacked, returned, timeouts, failed',
    labelNames: ['result'] as const,
    collect(this: Counter<'result'>) {
      const now = publisher.stats();
      for (const result of results) {
        const delta = now[result] - (seen[result] ?? 0);
        if (delta > 0) this.inc({ result }, delta);
        seen[result] = now[result];
      }
    },
  });
}

/** @internal `tasksys_outbox_relayed_total{result}` from the relay's counters. */
export function registerRelayMetrics(metrics: MetricsService, relay: OutboxRelayService): void {
  const seen = { sent: 0, failed: 0 };
  metrics.counter({
    name: 'tasksys_outbox_relayed_total',
    help: 'Outbox rows relayed by this process: sent (confirmed) or failed (left for the next round)',
    labelNames: ['result'] as const,
    collect(this: Counter<'result'>) {
      const now = relay.stats();
      for (const result of ['sent', 'failed'] as const) {
        const delta = now[result] - seen[result];
        if (delta > 0) this.inc({ result }, delta);
        seen[result] = now[result];
      }
    },
  });
}
