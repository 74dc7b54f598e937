import { Injectable, Logger } from '@nestjs/common';
import { TaskStateMachine } from '../task-state-machine';
import { InjectWorkerConfig } from './execution.constants';
import type { AbortReason } from './task.errors';
import type { WorkerConfig } from './worker.config';

interface LocalRun {
  token: number;
  abort(reason: AbortReason): void;
}

/**
 * @internal The leases this worker holds (BullMQ's LockManager beside its Worker): which tasks it
 * holds a claim on, which runs are live with which attempt, one heartbeat statement for all of them
 * every third of the lease, and the aborts: a run whose row no longer matches its attempt (cancelled,
 * taken over) is aborted, and so is one named by a cancel signal.
 */
@Injectable()
export class LeaseKeeper {
  private readonly logger = new Logger(LeaseKeeper.name);
  private readonly runs = new Map<string, LocalRun>();
  /** Claims held (claimed or adopted, until settled), counted per overlapping run of one task. */
  private readonly claims = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(
    private readonly tasks: TaskStateMachine,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.heartbeat(), Math.max(200, Math.floor(this.config.WORKER_LEASE_MS / 3)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Runs `body` holding a claim on task `id`. */
  async holding<T>(id: string, body: () => Promise<T>): Promise<T> {
    this.claims.set(id, (this.claims.get(id) ?? 0) + 1);
    try {
      return await body();
    } finally {
      const left = (this.claims.get(id) ?? 1) - 1;
      if (left > 0) this.claims.set(id, left);
      else this.claims.delete(id);
    }
  }

  holds(id: string): boolean {
    return this.claims.has(id);
  }

  /**
   * A run of task `id` with attempt `token` starts: it is heartbeated and can be aborted until the
   * returned function ends it. After shutdown began, it is aborted at once.
   */
  track(id: string, token: number, abort: (reason: AbortReason) => void): () => void {
    const run = { token, abort };
    this.runs.set(id, run);
    if (this.closing) abort('shutdown');
    // A newer run of the same task in this process (a takeover of our own expired lease) keeps its entry.
    return () => {
      if (this.runs.get(id) === run) this.runs.delete(id);
    };
  }

  /**
   * A cancel signal: abort the local run of this task, and only the attempt it names; a late signal
   * for an earlier attempt never aborts a newer run (a signal without an attempt is from an older version).
   */
  cancel(id: string, attempt?: number): void {
    const run = this.runs.get(id);
    if (run && (attempt === undefined || run.token === attempt)) run.abort('cancelled');
  }

  /** Shutdown after the grace period: every live run is aborted, and so is any that starts later. */
  abortAll(reason: AbortReason): number {
    this.closing = true;
    for (const run of this.runs.values()) run.abort(reason);
    return this.runs.size;
  }

  /**
   * One statement extends the leases of every run in this process; a run whose row no longer
   * matches is aborted. A failed heartbeat is only logged: the lease has two more periods to go.
   */
  async heartbeat(): Promise<void> {
    const runs = [...this.runs.entries()].map(([id, run]) => ({ id, token: run.token }));
    if (runs.length === 0) return;
    try {
      const owned = await this.tasks.heartbeatMany(runs, this.config.WORKER_ID, this.config.WORKER_LEASE_MS);
      for (const { id, token } of runs) {
        const run = this.runs.get(id);
        if (run && run.token === token && !owned.has(id)) run.abort('lease-lost');
      }
    } catch (err) {
      this.logger.warn(`heartbeat of ${runs.length} run(s) failed (${(err as Error).message})`);
    }
  }
}
