import { setTimeout as sleep } from 'node:timers/promises';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  Optional,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { MetricsService } from '@tasksys/platform';
import type { DatabaseConfig } from '../database.config';
import { InjectDatabaseConfig } from '../tasks.constants';
import type { RetentionConfig } from './retention.config';
import { TaskRetentionMetrics } from './task-retention.metrics';

/** @internal */
export const RETENTION_CONFIG = Symbol('RETENTION_CONFIG');

/** What one round did. `ran` is false when another replica held the lock (the round was skipped). */
export interface RetentionRound {
  ran: boolean;
  tasks: number;
  events: number;
  batches: number;
  /** Largest number of tasks one statement deleted: never above TASK_RETENTION_BATCH_SIZE. */
  largestBatch: number;
}

/**
 * @internal One batch ($1 the cutoff; $2, $3 the (finished_at, id) where the previous batch stopped;
 * $4 the batch size): the oldest finished tasks past the cutoff, a range of the partial index
 * `tasks_finished_at`, deleted with their events in one statement. Each batch starts after the last
 * one's range, so it never walks again over the index entries of the tasks already deleted (dead
 * until vacuumed: from the start, batch n would read n batches' worth of them). Deletes look tasks
 * and events up by key (`= ANY(ARRAY(...))`): a join would let the planner hash a scan of the table.
 * A task locked right now (an admin retrying it) is skipped, and so is one with an outbox row still
 * unsent or a completion webhook still being delivered, checked after the LIMIT so the range read stays the batch's: it goes once its message is
 * out, never dangling (a later round).
 */
export const DELETE_BATCH_SQL = `WITH candidates AS (
     SELECT t.id, t.finished_at FROM tasks t
      WHERE t.status IN ('succeeded','failed','cancelled')
        AND t.finished_at < $1::timestamptz AND (t.finished_at, t.id) > ($2::timestamptz, $3::uuid)
      ORDER BY t.finished_at, t.id
      LIMIT $4
      FOR UPDATE SKIP LOCKED),
   doomed AS (
     SELECT c.id FROM candidates c
      WHERE NOT EXISTS (SELECT FROM outbox o WHERE o.correlation_id = c.id::text OR o.body -> 'taskIds' ? c.id::text)
        AND NOT EXISTS (SELECT FROM webhook_deliveries w WHERE w.task_id = c.id AND w.status = 'pending')),
   ev AS (DELETE FROM task_events e WHERE e.task_id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1),
   gone AS (DELETE FROM tasks t WHERE t.id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1),
   last AS (SELECT finished_at, id FROM candidates ORDER BY finished_at DESC, id DESC LIMIT 1)
   SELECT (SELECT count(*)::int FROM candidates) AS candidates, (SELECT count(*)::int FROM gone) AS tasks,
          (SELECT count(*)::int FROM ev) AS events,
          (SELECT finished_at::text FROM last) AS last_at, (SELECT id FROM last) AS last_id`;

/**
 * Retention of finished tasks: deletes succeeded, failed and cancelled tasks whose `finished_at` is
 * older than TASK_RETENTION_MS, with their events, in batches of TASK_RETENTION_BATCH_SIZE, each its
 * own short transaction, pausing TASK_RETENTION_PAUSE_MS between them so submits are not slowed.
 * Every process that imports the module runs a timer; one round at a time runs across all of them,
 * under a session advisory lock scoped to the schema (`pg_try_advisory_lock`): a replica that does
 * not get it skips the round, and a crashed holder's lock goes with its connection. Kept: live
 * tasks, problem reports (no foreign key to the task), dead letters (in the broker; a redrive of a
 * deleted task's dead letter answers `missing` and keeps it). An idempotency key is free again once its task is
 * deleted: a resubmit with it creates a new task.
 */
@Injectable()
export class TaskRetention implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TaskRetention.name);
  private readonly metrics: TaskRetentionMetrics | null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RetentionRound> | null = null;
  private stopping = false;
  /** Cuts a pause between batches short on stop. */
  private halt = new AbortController();

  constructor(
    private readonly db: DataSource,
    @Inject(RETENTION_CONFIG) private readonly config: RetentionConfig,
    @InjectDatabaseConfig() private readonly database: Pick<DatabaseConfig, 'DATABASE_SCHEMA'>,
    @Optional() metrics?: MetricsService,
  ) {
    this.metrics = metrics ? new TaskRetentionMetrics(metrics) : null;
  }

  onApplicationBootstrap(): void {
    this.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** Starts the timer unless TASK_RETENTION_MS is 0 (idempotent). The first round starts one interval after. */
  start(): void {
    if (this.timer || this.config.TASK_RETENTION_MS === 0) return;
    this.stopping = false;
    this.halt = new AbortController();
    this.timer = setInterval(() => void this.runOnce().catch(() => undefined), this.config.TASK_RETENTION_INTERVAL_MS);
    this.timer.unref();
    this.logger.log(
      `deleting tasks finished more than ${this.config.TASK_RETENTION_MS} ms ago, every ${this.config.TASK_RETENTION_INTERVAL_MS} ms`,
    );
  }

  /** Stops the timer, and the round in flight after its current batch (which commits or not, whole). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One round, unless one is already running in this process (then its result). Throws on a database error. */
  runOnce(): Promise<RetentionRound> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<RetentionRound> {
    const result: RetentionRound = { ran: false, tasks: 0, events: 0, batches: 0, largestBatch: 0 };
    const started = Date.now();
    // A session of its own: the advisory lock belongs to it, and each batch on it commits by itself.
    const session = this.db.createQueryRunner();
    await session.connect();
    try {
      // Two-key form: its own key space, so it never meets the single-key migration lock.
      const [{ locked }] = await session.query(
        `SELECT pg_try_advisory_lock(hashtext($1), hashtext('task-retention')) AS locked`,
        [this.database.DATABASE_SCHEMA],
      );
      if (!locked) return result;
      result.ran = true;
      try {
        // The database's clock, fixed for the round: a round ends even while more tasks come of age.
        const [{ cutoff }] = await session.query(
          `SELECT (now() - $1::bigint * interval '1 millisecond')::text AS cutoff`,
          [this.config.TASK_RETENTION_MS],
        );
        let from: [string, string] = ['-infinity', '00000000-0000-0000-0000-000000000000'];
        while (!this.stopping) {
          const batchStarted = process.hrtime.bigint();
          const [batch] = await session.query(DELETE_BATCH_SQL, [
            cutoff,
            ...from,
            this.config.TASK_RETENTION_BATCH_SIZE,
          ]);
          this.metrics?.batchDuration.observe(Number(process.hrtime.bigint() - batchStarted) / 1e9);
          result.batches++;
          result.tasks += batch.tasks;
          result.events += batch.events;
          result.largestBatch = Math.max(result.largestBatch, batch.tasks);
          this.metrics?.deleted.inc({ table: 'tasks' }, batch.tasks);
          this.metrics?.deleted.inc({ table: 'task_events' }, batch.events);
          // A short range is the end of what is past the cutoff (skipped tasks wait for the next round).
          if (batch.candidates < this.config.TASK_RETENTION_BATCH_SIZE) break;
          from = [batch.last_at, batch.last_id];
          if (this.config.TASK_RETENTION_PAUSE_MS > 0)
            await sleep(this.config.TASK_RETENTION_PAUSE_MS, undefined, { signal: this.halt.signal }).catch(
              () => undefined,
            );
        }
      } finally {
        await session.query(`SELECT pg_advisory_unlock(hashtext($1), hashtext('task-retention'))`, [
          this.database.DATABASE_SCHEMA,
        ]);
      }
      this.metrics?.lastRun.set(Date.now() / 1000);
      this.metrics?.lastRunDuration.set((Date.now() - started) / 1000);
      if (result.tasks > 0)
        this.logger.log(
          `deleted ${result.tasks} finished task(s) and ${result.events} event(s) in ${result.batches} batch(es), ${Date.now() - started} ms`,
        );
      return result;
    } catch (err) {
      this.logger.warn(`retention round failed after ${result.tasks} task(s) (${(err as Error).message})`);
      throw err;
    } finally {
      await session.release();
    }
  }
}
