import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  Optional,
} from '@nestjs/common';
import type { Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsService } from '@tasksys/platform';
import { pgConnectionConfig } from '../data-source.options';
import type { DatabaseConfig } from '../database.config';
import { PgNotificationListener } from '../pg-notification.listener';
import { newTaskId } from '../task-id';
import { type NewTaskRow, TaskStateMachine } from '../task-state-machine';
import { isTerminal, type TaskStatus } from '../task-status';
import { InjectDatabaseConfig } from '../tasks.constants';
import { CronExpression } from './cron-expression';
import { type Schedule, toSchedule } from './schedule.store';
import type { SchedulesConfig } from './schedules.config';

/** @internal Injection token of the SchedulesConfig. */
export const SCHEDULES_CONFIG = Symbol('SCHEDULES_CONFIG');

/** Most schedules fired by one transaction; a full batch is followed by the next at once. */
const FIRE_BATCH = 100;
/** Longest sleep: NOTIFY wakes a firer for any change, so this only bounds a lost notification. */
export const FIRE_MAX_SLEEP_MS = 5000;
const FIRE_MIN_SLEEP_MS = 5;
const FIRE_FAILURE_SLEEP_MS = 1000;
/** Slots counted one by one when collapsing missed fires; past it the count says "at least". */
const MISSED_COUNT_CAP = 10_000;
/** Who fired a task, in task_events. */
export const SCHEDULER_ACTOR = 'system:scheduler';

/** @internal The idle probe: ms until the earliest active schedule is due, by the database's clock. One descent of `schedules_due`. */
export const NEXT_FIRE_SQL = `SELECT extract(epoch FROM next_run_at - clock_timestamp())::float8 * 1000 AS due_in_ms
  FROM schedules WHERE NOT paused ORDER BY next_run_at LIMIT 1`;

/** What one schedule's due fire time comes to. */
export interface FireDecision {
  /** The fire time handled (a task's `scheduledFor` when it fires). */
  fireAt: Date;
  /** Fire (create its task) or skip it (`overlap: skip` with the previous task unfinished). */
  fire: boolean;
  /** Fire times passed over by the missed-fire policy. */
  missed: number;
  /** The schedule's next fire time. */
  nextRunAt: Date;
}

/**
 * The fire of one due schedule at `now` (the database's clock). `next_run_at` is the first fire time
 * not yet handled. Within `graceMs` of it, that slot fires and the schedule moves to the slot after it
 * (a firer that fell behind catches up slot by slot). Older than that, everything was down: the
 * missed-fire policy fires ONCE, for the latest fire time at or before now, counts the slots passed
 * over, and goes on from the first slot after now.
 */
export function decideFire(
  cron: CronExpression,
  dueAt: Date,
  now: Date,
  graceMs: number,
  previousRunning: boolean,
  overlap: Schedule['overlap'],
): FireDecision {
  let fireAt = dueAt;
  let missed = 0;
  let nextRunAt: Date | null;
  if (now.getTime() - dueAt.getTime() > graceMs) {
    const latest = cron.latestAtOrBefore(now);
    if (latest && latest.getTime() > dueAt.getTime()) fireAt = latest;
    for (let slot: Date | null = dueAt; slot && slot < fireAt && missed < MISSED_COUNT_CAP; slot = cron.nextAfter(slot))
      missed++;
    nextRunAt = cron.nextAfter(now);
  } else {
    nextRunAt = cron.nextAfter(dueAt);
  }
  // 5 or 6 fields always match again (there is no year field); a year ahead if the library ever says no.
  nextRunAt ??= new Date(now.getTime() + 366 * 86_400_000);
  return { fireAt, fire: !(overlap === 'skip' && previousRunning), missed, nextRunAt };
}

/** One fire round's outcome. */
export interface FireRound {
  /** Tasks created, and fires skipped by `overlap: skip`. */
  fired: number;
  skipped: number;
  sleepMs: number;
}

/**
 * Fires cron schedules: every api and every worker runs one. A round probes for the earliest due
 * schedule (one descent of the partial index `schedules_due`, no write); when one is due it fires, in
 * ONE transaction per batch: lock the due schedules (FOR UPDATE SKIP LOCKED, so firers share the work),
 * create their tasks through TaskStateMachine.createMany (the submit path: task, event and outbox row),
 * and advance `next_run_at`. The task's UNIQUE (schedule_id, scheduled_for) key makes a fire one task
 * even if two firers ever handled the same slot: the second insert does nothing. A firer killed
 * mid-round rolls back; the next round of any firer does the fire. It sleeps until the next due time
 * (at most FIRE_MAX_SLEEP_MS) and wakes on NOTIFY `<schema>.schedules` when a schedule changes.
 */
@Injectable()
export class ScheduleFirer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ScheduleFirer.name);
  private readonly lateness: Histogram<'outcome'> | null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private listener: PgNotificationListener | null = null;
  private readonly firedHooks: (() => void)[] = [];
  private failing = false;
  /** Rounds finished since start (a test waits for the first before it changes anything). */
  rounds = 0;

  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
    @Inject(SCHEDULES_CONFIG) private readonly config: SchedulesConfig,
    @InjectDatabaseConfig() private readonly database: DatabaseConfig,
    @Optional() metrics?: MetricsService,
  ) {
    this.lateness =
      metrics?.histogram({
        name: 'tasksys_schedule_fire_lateness_seconds',
        help: 'From a schedule’s fire time to the commit of its task (or skip), by outcome (fired, skipped, recovered)',
        labelNames: ['outcome'] as const,
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300, 3600],
      }) ?? null;
  }

  /** Runs after every round that created tasks (a worker wakes its polling outbox relay). */
  onFired(hook: () => void): void {
    this.firedHooks.push(hook);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.SCHEDULER_ENABLED) await this.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** Starts the loop and its LISTEN (idempotent). */
  async start(): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    this.listener = new PgNotificationListener(
      pgConnectionConfig(this.database),
      `${this.database.DATABASE_SCHEMA}.schedules`,
      () => this.wake(),
      () => this.wake(),
    );
    await this.listener.start();
    this.loop = this.run();
  }

  /** Stops after the round in flight (its transaction commits or rolls back; nothing is half done). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    this.loop = null;
    await this.listener?.close();
    this.listener = null;
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** One round: probe, and fire batches while any schedule is due. Never throws. */
  async fireOnce(): Promise<FireRound> {
    let fired = 0;
    let skipped = 0;
    try {
      let dueInMs = await this.nextDueInMs();
      while (dueInMs !== null && dueInMs <= 0 && !this.stopping) {
        const batch = await this.fireDue(FIRE_BATCH);
        fired += batch.fired;
        skipped += batch.skipped;
        if (batch.fired > 0) for (const hook of this.firedHooks) hook();
        // A schedule catching up (or a full batch) is due again at once; the probe says.
        dueInMs = batch.handled > 0 ? await this.nextDueInMs() : null;
        // Due but locked by another firer: theirs. Look again soon, not in a spin.
        if (batch.handled === 0) dueInMs = FIRE_MIN_SLEEP_MS * 10;
      }
      if (this.failing) this.logger.log('firing schedules again');
      this.failing = false;
      const sleepMs = Math.min(dueInMs ?? FIRE_MAX_SLEEP_MS, FIRE_MAX_SLEEP_MS);
      return { fired, skipped, sleepMs: Math.max(FIRE_MIN_SLEEP_MS, Math.ceil(sleepMs)) };
    } catch (err) {
      if (!this.failing) this.logger.warn(`firing schedules failed (${(err as Error).message}); retrying`);
      this.failing = true;
      return { fired, skipped, sleepMs: FIRE_FAILURE_SLEEP_MS };
    }
  }

  /** Ms until the earliest active schedule is due (<= 0: due now); null when there is none. */
  async nextDueInMs(): Promise<number | null> {
    const rows: { due_in_ms: number }[] = await this.db.query(NEXT_FIRE_SQL);
    return rows.length > 0 ? Number(rows[0].due_in_ms) : null;
  }

  /** Fires up to `limit` due schedules in one transaction; `handled` counts the schedules it locked. */
  async fireDue(limit: number): Promise<{ handled: number; fired: number; skipped: number }> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    let committed = false;
    try {
      await runner.startTransaction();
      const rows: Record<string, any>[] = await runner.query(
        `SELECT s.*, now() AS db_now, t.status AS last_task_status
           FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task_id
          WHERE NOT s.paused AND s.next_run_at <= now()
          ORDER BY s.next_run_at LIMIT $1
          FOR UPDATE OF s SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) {
        await runner.commitTransaction();
        committed = true;
        return { handled: 0, fired: 0, skipped: 0 };
      }
      const decisions: { schedule: Schedule; decision: FireDecision }[] = [];
      for (const row of rows) {
        const schedule = toSchedule(row);
        const now: Date = row['db_now'];
        let cron: CronExpression;
        try {
          cron = CronExpression.parse(schedule.cron, schedule.timezone);
        } catch (err) {
          // Validated when written; a runtime that lost a zone must not stop every other schedule.
          this.logger.error(`schedule ${schedule.id}: ${(err as Error).message}; trying again in an hour`);
          decisions.push({
            schedule,
            decision: {
              fireAt: schedule.nextRunAt,
              fire: false,
              missed: 0,
              nextRunAt: new Date(now.getTime() + 3_600_000),
            },
          });
          continue;
        }
        const status = row['last_task_status'] as TaskStatus | null;
        const decision = decideFire(
          cron,
          schedule.nextRunAt,
          now,
          this.config.SCHEDULE_MISFIRE_GRACE_MS,
          status !== null && !isTerminal(status),
          schedule.overlap,
        );
        if (decision.missed > 0)
          this.logger.warn(
            `schedule ${schedule.id} (${schedule.name}): ${decision.missed}${decision.missed >= MISSED_COUNT_CAP ? '+' : ''} ` +
              `fire times from ${schedule.nextRunAt.toISOString()} missed while nothing fired; firing once for ${decision.fireAt.toISOString()}`,
          );
        decisions.push({ schedule, decision });
      }
      const tasks: NewTaskRow[] = decisions
        .filter((d) => d.decision.fire)
        .map(({ schedule: s, decision: d }) => ({
          id: newTaskId(),
          owner: s.owner,
          type: s.task.type,
          payload: s.task.payload,
          maxAttempts: s.task.maxAttempts,
          timeoutMs: s.task.timeoutMs,
          priority: s.task.priority,
          start: true,
          actor: SCHEDULER_ACTOR,
          runAt: d.fireAt,
          scheduleId: s.id,
          scheduledFor: d.fireAt,
        }));
      const results = [...(await this.sm.createMany(tasks, runner.manager)).entries()];
      const created = results.flatMap(([, r]) => ('refused' in r ? [] : [r]));
      const createdFor = new Set(created.map((t) => t.scheduleId));
      // A fire refused by the owner's maxQueued counts as skipped: the fire time passes, like an overlap skip.
      const refusedFor = new Set(
        results.filter(([, r]) => 'refused' in r).map(([id]) => tasks.find((t) => t.id === id)?.scheduleId),
      );
      for (const { schedule: s, decision: d } of decisions)
        if (refusedFor.has(s.id)) {
          this.logger.warn(
            `schedule ${s.id} (${s.name}): fire ${d.fireAt.toISOString()} skipped: owner ${s.owner} is at its maxQueued`,
          );
          d.fire = false;
        }
      await runner.query(
        `UPDATE schedules s SET next_run_at = x.next_run_at, updated_at = now(),
                last_fired_at = CASE WHEN x.fire THEN x.fire_at ELSE s.last_fired_at END,
                last_task_id = CASE WHEN x.fire
                  THEN coalesce((SELECT t.id FROM tasks t WHERE t.schedule_id = s.id AND t.scheduled_for = x.fire_at), s.last_task_id)
                  ELSE s.last_task_id END,
                fired_count = s.fired_count + x.created::int,
                skipped_count = s.skipped_count + (NOT x.fire)::int,
                last_skipped_at = CASE WHEN x.fire THEN s.last_skipped_at ELSE x.fire_at END,
                missed_count = s.missed_count + x.missed
           FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, next_run_at timestamptz, fire_at timestamptz, fire boolean,
                                                   created boolean, missed int)
          WHERE s.id = x.id`,
        [
          JSON.stringify(
            decisions.map(({ schedule: s, decision: d }) => ({
              id: s.id,
              next_run_at: d.nextRunAt.toISOString(),
              fire_at: d.fireAt.toISOString(),
              fire: d.fire,
              created: createdFor.has(s.id),
              missed: d.missed,
            })),
          ),
        ],
      );
      await runner.commitTransaction();
      committed = true;
      for (const { schedule: s, decision: d } of decisions) {
        const outcome = !d.fire ? 'skipped' : d.missed > 0 ? 'recovered' : 'fired';
        this.lateness?.observe({ outcome }, Math.max(0, Date.now() - d.fireAt.getTime()) / 1000);
        if (!d.fire && !refusedFor.has(s.id))
          this.logger.log(`schedule ${s.id} (${s.name}): fire ${d.fireAt.toISOString()} skipped (overlap: skip)`);
      }
      const fired = decisions.filter((d) => d.decision.fire).length;
      return { handled: decisions.length, fired: created.length, skipped: decisions.length - fired };
    } finally {
      if (!committed && runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      await runner.release();
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      const { sleepMs } = await this.fireOnce();
      this.rounds++;
      if (this.stopping) break;
      // A notification during the round: look again at once, it may be for a schedule due sooner.
      if (this.woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, sleepMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = null;
    }
  }
}
