import { hostname } from 'node:os';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Topology } from '@tasksys/messaging';
import { InjectWorkerConfig } from './execution.constants';
import type { WorkerConfig } from './worker.config';

/** Registers this worker (and the task types it serves) in the `workers` table and heartbeats it, so operators see who is alive. */
@Injectable()
export class WorkerRegistry {
  private readonly logger = new Logger(WorkerRegistry.name);
  private timer: NodeJS.Timeout | null = null;
  private lastSeenOk = false;

  constructor(
    private readonly db: DataSource,
    private readonly topology: Topology,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  /** Heartbeat period; a worker not seen for three periods counts as dead. */
  static readonly HEARTBEAT_MS = 5000;

  async start(inFlight: () => number): Promise<void> {
    await this.db.query(
      `INSERT INTO workers (id, host, pid, concurrency, in_flight, started_at, last_seen_at, stopped_at, task_types)
       VALUES ($1, $2, $3, $4, 0, now(), now(), NULL, $5)
       ON CONFLICT (id) DO UPDATE SET host = $2, pid = $3, concurrency = $4, in_flight = 0,
                                      started_at = now(), last_seen_at = now(), stopped_at = NULL, task_types = $5`,
      [this.config.WORKER_ID, hostname(), process.pid, this.config.WORKER_CONCURRENCY, this.topology.served],
    );
    this.lastSeenOk = true;
    this.timer = setInterval(() => {
      this.db
        .query(`UPDATE workers SET last_seen_at = now(), in_flight = $2 WHERE id = $1`, [
          this.config.WORKER_ID,
          inFlight(),
        ])
        .then(
          () => (this.lastSeenOk = true),
          (err) => {
            this.lastSeenOk = false;
            this.logger.warn(`worker heartbeat failed (${(err as Error).message})`);
          },
        );
    }, WorkerRegistry.HEARTBEAT_MS);
  }

  /** Whether the last heartbeat reached the database. */
  healthy(): boolean {
    return this.lastSeenOk;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.db
      .query(`UPDATE workers SET stopped_at = now(), in_flight = 0 WHERE id = $1`, [this.config.WORKER_ID])
      .catch((err) => this.logger.warn(`could not mark worker stopped (${(err as Error).message})`));
  }
}
