import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** @internal How recent a heartbeat must be for a worker to count as alive (three missed 5 s beats). */
export const WORKER_ALIVE_WITHIN_MS = 15_000;

export interface WorkerStatus {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  inFlight: number;
  startedAt: Date;
  lastSeenAt: Date;
  stoppedAt: Date | null;
  /** Seen within WORKER_ALIVE_WITHIN_MS (by the database clock) and not stopped. */
  alive: boolean;
}

/** How long the set of served types is reused (it changes when a worker starts or dies). */
const SERVED_TYPES_CACHE_MS = 2000;

/** The worker fleet as the `workers` table shows it: live workers first, then the most recently seen. */
@Injectable()
export class WorkerFleetQuery {
  private served: { at: number; types: Promise<ReadonlySet<string>> } | null = null;

  constructor(private readonly db: DataSource) {}

  /**
   * The task types some live worker serves (one small query, reused for 2 s): a queued task of any
   * other type waits because no worker serves it, its message in the unrouted queue.
   */
  servedTypes(aliveWithinMs = WORKER_ALIVE_WITHIN_MS): Promise<ReadonlySet<string>> {
    if (this.served && Date.now() - this.served.at < SERVED_TYPES_CACHE_MS) return this.served.types;
    const types = this.db
      .query(
        `SELECT DISTINCT unnest(task_types) AS type FROM workers
          WHERE stopped_at IS NULL AND last_seen_at > now() - $1 * interval '1 millisecond'`,
        [aliveWithinMs],
      )
      .then((rows: { type: string }[]) => new Set(rows.map((r) => r.type)) as ReadonlySet<string>);
    this.served = { at: Date.now(), types };
    types.catch(() => (this.served = null));
    return types;
  }

  /** Up to `limit` workers (the table keeps stopped ones too). */
  async list(limit = 200, aliveWithinMs = WORKER_ALIVE_WITHIN_MS): Promise<WorkerStatus[]> {
    const rows: Record<string, any>[] = await this.db.query(
      `SELECT id, host, pid, concurrency, in_flight, started_at, last_seen_at, stopped_at,
              (stopped_at IS NULL AND last_seen_at > now() - $1 * interval '1 millisecond') AS alive
         FROM workers ORDER BY alive DESC, last_seen_at DESC, id LIMIT $2`,
      [aliveWithinMs, limit],
    );
    return rows.map((r) => ({
      id: r['id'],
      host: r['host'],
      pid: r['pid'],
      concurrency: r['concurrency'],
      inFlight: r['in_flight'],
      startedAt: r['started_at'],
      lastSeenAt: r['last_seen_at'],
      stoppedAt: r['stopped_at'],
      alive: r['alive'] === true,
    }));
  }

  /** Workers alive now, in one indexed-or-small count (for the metrics scrape). */
  async aliveCount(aliveWithinMs = WORKER_ALIVE_WITHIN_MS): Promise<number> {
    const [row] = await this.db.query(
      `SELECT count(*)::int AS n FROM workers WHERE stopped_at IS NULL AND last_seen_at > now() - $1 * interval '1 millisecond'`,
      [aliveWithinMs],
    );
    return row.n;
  }
}
