import type { Counter, Gauge, Histogram } from 'prom-client';
import type { MetricsService } from '@tasksys/platform';

/** @internal What the retention job counts. */
export class TaskRetentionMetrics {
  readonly deleted: Counter<'table'>;
  readonly lastRun: Gauge;
  readonly lastRunDuration: Gauge;
  readonly batchDuration: Histogram;

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
    // How long each batch holds its row locks and competes with submits.
    this.batchDuration = metrics.histogram({
      name: 'tasksys_retention_batch_duration_seconds',
      help: 'Run time of one retention batch (one statement, one transaction)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
  }
}
