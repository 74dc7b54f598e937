import { Injectable, type OnModuleInit } from '@nestjs/common';
import { MetricsService } from '@tasksys/platform';
import { PgOutboxStore } from '../outbox/pg-outbox.store';
import { TaskQueries } from './task.queries';

/** Gauges read from the task store at scrape time (one grouped query each), not kept in memory. */
@Injectable()
export class TaskStoreMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly queries: TaskQueries,
    private readonly outbox: PgOutboxStore,
  ) {}

  onModuleInit(): void {
    const queries = this.queries;
    const outbox = this.outbox;
    this.metrics.gauge({
      name: 'tasksys_tasks',
      help: 'Tasks in each non-terminal state (new, queued, running, retrying); terminal counts are not scanned',
      labelNames: ['state'] as const,
      async collect() {
        for (const [status, n] of Object.entries(await queries.activeCounts())) this.set({ state: status }, n);
      },
    });
    let backlog: Promise<{ count: number; oldestAgeMs: number }> | null = null;
    // Both outbox gauges come from one query per scrape.
    const readBacklog = () => {
      backlog ??= outbox.backlog().finally(() => setImmediate(() => (backlog = null)));
      return backlog;
    };
    this.metrics.gauge({
      name: 'tasksys_outbox_backlog',
      help: 'Outbox rows not yet confirmed by the broker',
      async collect() {
        this.set((await readBacklog()).count);
      },
    });
    this.metrics.gauge({
      name: 'tasksys_outbox_oldest_age_seconds',
      help: 'Age of the oldest outbox row not yet confirmed by the broker (0 when empty)',
      async collect() {
        this.set((await readBacklog()).oldestAgeMs / 1000);
      },
    });
  }
}
