import type { Counter, Gauge } from 'prom-client';
import type { MetricsService } from '@tasksys/platform';

/** @internal What the retention job counts. */
export class TaskRetentionMetrics {
  readonly deleted: Counter<'table'>;
  readonly lastRun: Gauge;
  readonly lastRunDuration: Gauge;

  constructor(metrics: MetricsService) {
    this.deleted = metrics.counter({
      name: 'tasksys_retention_deleted_total',
      help: 'Rows deleted by the retention job, by table (tasks, task_events)',
      labelNames: ['table'] as const,
    });
    this.lastRun = metrics.gauge({
      name: 'tasksys_retention_last_run_timestamp_seconds',
      help: 'When this process last completed a retention round (it held the lock and found nothing more to delete)',
    });
    this.lastRunDuration = metrics.gauge({
      name: 'tasksys_retention_last_run_duration_seconds',
      help: 'How long the last completed retention round of this process took',
    });
  }
}
