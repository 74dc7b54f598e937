import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TaskStateMachine } from '../task-state-machine';
import type { TaskStatus } from '../task-status';

export interface ReconcileOptions {
  /** Queued tasks not touched for this long get a new work message (their message may be gone). */
  olderThanMs: number;
  /** Most tasks re-enqueued per state in one call. */
  limit: number;
}

export interface ReconcileResult {
  /** running, lease expired */
  running: number;
  /** retrying, past due */
  retrying: number;
  /** queued for longer than olderThanMs */
  queued: number;
  total: number;
}

/** Tasks of one kind that may have lost their message: the state they must still be in, and how to find them. */
const CANDIDATES: { status: TaskStatus; key: keyof Omit<ReconcileResult, 'total'>; where: string }[] = [
  { status: 'running', key: 'running', where: `status = 'running' AND lease_expires_at < now()` },
  // Held tasks (an owner at maxRunning) wait on purpose: the database wakes them.
  { status: 'retrying', key: 'retrying', where: `status = 'retrying' AND run_after < now() AND held_since IS NULL` },
  {
    status: 'queued',
    key: 'queued',
    where: `status = 'queued' AND held_since IS NULL AND updated_at < now() - $2::bigint * interval '1 millisecond'`,
  },
];

/**
 * The admin's reconcile (for example after the broker lost its data): every non-terminal task
 * whose message may be gone gets a new work message through the outbox. Not a transition: a task
 * that moved on meanwhile is left alone (`enqueueAgain` rechecks its state), and a duplicate
 * message is absorbed by the worker's claim.
 */
@Injectable()
export class ReconcileCommand {
  private readonly logger = new Logger(ReconcileCommand.name);

  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  async execute(opts: ReconcileOptions): Promise<ReconcileResult> {
    const result: ReconcileResult = { running: 0, retrying: 0, queued: 0, total: 0 };
    for (const c of CANDIDATES) {
      const rows: { id: string }[] = await this.db.query(
        `SELECT id FROM tasks WHERE ${c.where} ORDER BY updated_at LIMIT $1`,
        c.where.includes('$2') ? [opts.limit, opts.olderThanMs] : [opts.limit],
      );
      const done = await this.sm.enqueueAgain(
        rows.map((r) => r.id),
        [c.status],
      );
      result[c.key] = done.length;
      result.total += done.length;
    }
    if (result.total > 0) this.logger.log(`re-enqueued ${result.total} task(s): ${JSON.stringify(result)}`);
    return result;
  }
}
