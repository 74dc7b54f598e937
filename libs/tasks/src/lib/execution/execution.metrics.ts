import { Injectable } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { MetricsService } from '@tasksys/platform';

const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];

/** @internal What the worker's executor counts; see the alert rules and dashboard in docker/. */
@Injectable()
export class ExecutionMetrics {
  readonly duration: Histogram<'type' | 'outcome'>;
  readonly queueWait: Histogram<'type'>;
  readonly retries: Counter<'tier'>;
  readonly deadLetters: Counter<'reason'>;
  readonly duplicates: Counter;
  readonly deferrals: Counter;
  readonly parked: Counter;
  readonly sweptTasks: Counter<'kind'>;
  readonly promotionLateness: Histogram<'type'>;

  constructor(private readonly metrics: MetricsService) {
    this.duration = metrics.histogram({
      name: 'tasksys_task_duration_seconds',
      help: 'Run time of a task attempt, by type and outcome',
      labelNames: ['type', 'outcome'] as const,
      buckets: DURATION_BUCKETS,
    });
    this.queueWait = metrics.histogram({
      name: 'tasksys_task_queue_wait_seconds',
      help: 'From submit to the first claim, by type',
      labelNames: ['type'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600],
    });
    this.retries = metrics.counter({
      name: 'tasksys_retries_total',
      help: 'Retries published, by tier',
      labelNames: ['tier'] as const,
    });
    this.deadLetters = metrics.counter({
      name: 'tasksys_dead_letters_total',
      help: 'Messages dead-lettered, by reason code',
      labelNames: ['reason'] as const,
    });
    this.duplicates = metrics.counter({
      name: 'tasksys_duplicate_deliveries_total',
      help: 'Deliveries for tasks that were already terminal (absorbed duplicates)',
    });
    this.deferrals = metrics.counter({
      name: 'tasksys_deferrals_total',
      help: 'Deliveries deferred: the task runs under a live lease elsewhere, is not due yet, or this worker cannot run its type',
    });
    this.parked = metrics.counter({
      name: 'tasksys_held_deliveries_total',
      help: "Deliveries acked with their task held back by its owner's maxRunning (parked in the database until a slot frees)",
    });
    this.sweptTasks = metrics.counter({
      name: 'tasksys_swept_tasks_total',
      help: 'Tasks re-enqueued by the sweeper because their message may be lost, by kind (queued, stranded)',
      labelNames: ['kind'] as const,
    });
    this.promotionLateness = metrics.histogram({
      name: 'tasksys_scheduled_promotion_lateness_seconds',
      help: "From a scheduled task's due time to its promotion to queued (its message then goes out at once), by type",
      labelNames: ['type'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
    });
  }

  /** Gauges read at scrape time from live objects. */
  observeInFlight(inFlight: () => number): void {
    this.metrics.gauge({
      name: 'tasksys_in_flight',
      help: 'Deliveries being handled by this worker',
      collect() {
        this.set(inFlight());
      },
    });
  }
}
