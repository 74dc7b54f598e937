import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { QueueStatsReader, type QueueStatsReport } from '@tasksys/messaging';
import { MetricsService } from '@tasksys/platform';
import { TaskTypeRegistry, WorkerFleetQuery } from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';

/** Longest a scrape waits for the broker's queue figures; past it the gauges keep their last values. */
const QUEUE_SCRAPE_TIMEOUT_MS = 2000;

/**
 * Fleet and queue gauges of the api's /metrics, read at scrape time: workers alive (one count
 * query) and expected, and messages and consumers per queue of the topology (one management API
 * round, or AMQP, shared by both queue gauges and bounded by a timeout).
 */
@Injectable()
export class AdminMetrics implements OnModuleInit {
  private readonly logger = new Logger(AdminMetrics.name);
  private inFlight: Promise<QueueStatsReport | null> | null = null;

  constructor(
    private readonly metrics: MetricsService,
    private readonly fleet: WorkerFleetQuery,
    private readonly queues: QueueStatsReader,
    private readonly taskTypes: TaskTypeRegistry,
    @Inject(ConfigService) private readonly config: ConfigService<ApiConfig, true>,
  ) {}

  onModuleInit(): void {
    const fleet = this.fleet;
    const expected = this.config.get('WORKERS_EXPECTED', { infer: true });
    this.metrics.gauge({
      name: 'tasksys_workers_alive',
      help: 'Workers with a heartbeat in the last 15 s that have not stopped',
      async collect() {
        this.set(await fleet.aliveCount());
      },
    });
    this.metrics.gauge({
      name: 'tasksys_workers_expected',
      help: 'Workers the fleet should have (WORKERS_EXPECTED)',
      collect() {
        this.set(expected);
      },
    });
    const read = () => this.readQueues();
    this.metrics.gauge({
      name: 'tasksys_queue_messages',
      help: 'Messages in each queue of the topology (ready + unacked; ready only when the management API is unreachable)',
      labelNames: ['queue'] as const,
      async collect() {
        const r = await read();
        for (const q of r?.queues ?? []) this.set({ queue: q.name }, q.messages);
      },
    });
    this.metrics.gauge({
      name: 'tasksys_queue_consumers',
      help: 'Consumers on each queue of the topology',
      labelNames: ['queue'] as const,
      async collect() {
        const r = await read();
        for (const q of r?.queues ?? []) this.set({ queue: q.name }, q.consumers);
      },
    });
    this.metrics.gauge({
      name: 'tasksys_queue_oldest_message_age_seconds',
      help: 'Age of the oldest ready message in each queue (management API only; 0 when empty or unknown)',
      labelNames: ['queue'] as const,
      async collect() {
        const r = await read();
        for (const q of r?.queues ?? []) this.set({ queue: q.name }, (q.oldestMessageAgeMs ?? 0) / 1000);
      },
    });
  }

  /** One broker read per scrape, bounded; null (gauges unchanged) when the broker does not answer in time. */
  private readQueues(): Promise<QueueStatsReport | null> {
    this.inFlight ??= Promise.race([
      this.queues.read(this.taskTypes.list().map((t) => t.definition.type)),
      new Promise<null>((ok) => setTimeout(() => ok(null), QUEUE_SCRAPE_TIMEOUT_MS).unref()),
    ])
      .catch((err: Error) => {
        this.logger.warn(`queue figures unavailable for /metrics: ${err.message}`);
        return null;
      })
      .finally(() => setImmediate(() => (this.inFlight = null)));
    return this.inFlight;
  }
}
