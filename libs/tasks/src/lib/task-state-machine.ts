import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { cancelMessageSql, taskMessageSql, workMessageSql } from '@tasksys/messaging';
import type { DatabaseConfig } from './database.config';
import { Task, type TaskError } from './entities';
import { preparedQuery } from './prepared-query';
import { PROGRESS_EVENT_SQL } from './stream/progress-event.sql';
import { newTaskId } from './task-id';
import { isTerminal, type TaskStatus } from './task-status';
import { OwnerQueueFullError } from './task.errors';
import { DATABASE_CONFIG } from './tasks.constants';
import { webhookDeliverySql } from './webhooks/webhook-delivery.sql';

/** What a transition did: `applied` false means "not allowed from the current state"; `task` is then the row as it is (null: no such task). */
export interface TransitionResult {
  applied: boolean;
  task: Task | null;
}

export interface NewTask {
  /** Default: a new UUIDv7 (newTaskId); a repeated idempotency key answers with the first task's id instead. */
  id?: string;
  owner: string;
  type: string;
  payload: unknown;
  maxAttempts: number;
  timeoutMs: number;
  priority?: number;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  /**
   * When it is due: a time (`runAt`) or a delay from the database's clock (`delayMs`), at most one
   * of them. A started task due later waits as `scheduled` until then; one due now or in the past is queued at once.
   */
  runAt?: Date | null;
  delayMs?: number | null;
  /** Where a completion webhook goes when the task ends (checked by the caller: CallbackUrlPolicy). */
  callbackUrl?: string | null;
}

/** A task of `createMany`: its id chosen by the caller, who it was created by, and whether it is queued at once. */
export type NewTaskRow = Omit<NewTask, 'idempotencyKey' | 'requestHash'> & {
  id: string;
  start: boolean;
  actor: string;
  traceparent?: string | null;
  /** Rows of one group pass an owner's maxQueued together or not at all (a batch request); default: the row alone. */
  group?: string;
  /** A cron schedule's fire: at most one task per (scheduleId, scheduledFor); a second one is not inserted. */
  scheduleId?: string | null;
  scheduledFor?: Date | null;
};

export interface CreateResult {
  /** false when an earlier request with the same (owner, idempotency key) already created it. */
  created: boolean;
  task: Task;
}

interface TransitionSpec {
  from: readonly TaskStatus[];
  to: TaskStatus;
  /** Extra SET assignments; `cur` is the locked current row, `x` the task's own inputs. */
  set?: string;
  /** Extra condition on `cur` and `x`, e.g. the fencing token `cur.attempt = x.token`. */
  guard?: string;
  /** Per-task inputs as `jsonb_to_recordset` columns, e.g. `token int, result jsonb`. */
  inputs?: string;
  /** Statement-wide parameters, from $3 on ($1 = the inputs, $2 = the actor). */
  params?: unknown[];
  actor: string;
  /** SQL expression for the event's error column. */
  eventError?: string;
  /** Queue the task's work message through the outbox in the same statement. */
  enqueue?: boolean;
  /** Send a cancel signal on the control exchange (only when the task was running). */
  signalCancel?: boolean;
  /** SQL choosing the new state from `cur` instead of `to` (a start goes to `scheduled` or `queued`). */
  toSql?: string;
  /** A claim: hold back (park) what would take a limited owner past maxRunning ("Owner quotas" below). */
  ownerLimits?: boolean;
  /** Frees running slots: wake the next held tasks of their limited owners, with their outbox rows. */
  wakeHeld?: boolean;
}

/** What one promotion round did: the tasks it queued and how long until the next one of those types is due. */
export interface PromotionResult {
  promoted: Task[];
  /** By the database's clock; null when no task of those types is scheduled. */
  nextDueInMs: number | null;
}

/** A submit refused because its owner is at maxQueued: the limit and the non-terminal tasks it already has. */
export interface QueueLimitRefusal {
  refused: true;
  owner: string;
  maxQueued: number;
  queued: number;
}

/** One task's inputs to a batched transition. */
type TransitionInput = { id: string } & Record<string, unknown>;

const NOT_FOUND: TransitionResult = Object.freeze({ applied: false, task: null });

/** Tasks per work message unless TASK_BUNDLE_SIZE says otherwise (see `enqueueWorkSql`). */
export const DEFAULT_BUNDLE_SIZE = 100;

/**
 * The one outbox INSERT of work messages for the rows of `from` (whose alias `upd` has the task's
 * id, type and priority; `headers` an SQL jsonb expression over them). Tasks of one type, priority
 * and headers share a message, `bundle` at most, in id order (UUIDv7: the order they were made);
 * a message of one task is a TaskMessage, of more a TaskBundle (libs/messaging, task-message.ts).
 * `bundle` 1: one message per task, as before bundles.
 */
function enqueueWorkSql(from: string, bundle: number, headers = `'{}'::jsonb`): string {
  if (bundle <= 1)
    return `INSERT INTO outbox (exchange, routing_key, correlation_id, body, headers, priority)
            SELECT 'work', upd.type, upd.id::text, ${taskMessageSql('upd')}, ${headers}, upd.priority FROM ${from}`;
  return `INSERT INTO outbox (exchange, routing_key, correlation_id, body, headers, priority)
          SELECT 'work', b.type, b.ids[1]::text, ${workMessageSql('b')}, b.headers, b.priority
            FROM (SELECT s.type, s.priority, s.headers, array_agg(s.id ORDER BY s.n) AS ids
                    FROM (SELECT upd.type, upd.priority, ${headers} AS headers, upd.id,
                                 row_number() OVER (PARTITION BY upd.type, upd.priority, ${headers} ORDER BY upd.id) AS n
                            FROM ${from}) s
                   GROUP BY s.type, s.priority, s.headers, (s.n - 1) / ${Math.floor(bundle)}) b`;
}

/**
 * The rows of tasks whose ids `ids` (a query of one column `id`) selects, each once, locked FOR
 * UPDATE in id order (so concurrent statements cannot deadlock). One primary-key lookup per id, whatever the planner knows: a prepared statement's
 * generic plan, made while `tasks` was empty, would otherwise keep scanning the whole table for
 * `id = ANY(...)` as it grows (prepared-plans.int-spec.ts).
 */
function lockTasksByIdSql(ids: string): string {
  return `SELECT t.* FROM (SELECT DISTINCT k.id FROM (${ids}) k ORDER BY k.id) k
            CROSS JOIN LATERAL (SELECT * FROM tasks WHERE tasks.id = k.id FOR UPDATE) t`;
}

/** SQL of a task's due time from a time and a delay parameter (null, null: no due time, it starts at once). */
function runAtSql(runAt: string, delayMs: string): string {
  return `coalesce(${runAt}::timestamptz, now() + ${delayMs}::bigint * interval '1 millisecond')`;
}

/**
 * SQL of a new task's stored `traceparent`: kept only when it starts `scheduled`, whose work message the
 * promotion writes later (PROMOTE_DUE_SQL); a task queued at once has it in its outbox row already.
 */
function scheduledTraceparentSql(status: string, traceparent: string): string {
  return `CASE WHEN ${status} = 'scheduled' THEN ${traceparent} END`;
}

/** SQL of a new or started task's state: `new` unless started, then `scheduled` while its due time is ahead, else `queued`. */
function startStatusSql(start: string, runAt: string): string {
  return `CASE WHEN NOT ${start} THEN 'new' WHEN ${runAt} > now() THEN 'scheduled' ELSE 'queued' END`;
}

/**
 * @internal The promotion statement ($1 the types, $2 the batch size, $3 the actor): due `scheduled` tasks,
 * oldest due first, to `queued` with their events and work messages; and the time until the next one is due.
 */
export function promoteDueSql(bundle: number): string {
  return `WITH due AS (
     SELECT d.id FROM unnest($1::text[]) AS s(type)
     CROSS JOIN LATERAL (
       SELECT id, run_at FROM tasks
        WHERE status = 'scheduled' AND type = s.type AND run_at <= now()
        ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED) d
     ORDER BY d.run_at LIMIT $2),
   upd AS (
     UPDATE tasks t SET status = 'queued', updated_at = now()
       FROM due WHERE t.id = due.id AND t.status = 'scheduled'
     RETURNING t.*),
   ev AS (
     INSERT INTO task_events (task_id, from_status, to_status, attempt, actor)
     SELECT upd.id, 'scheduled', upd.status, upd.attempt, $3 FROM upd),
   ob AS (${enqueueWorkSql('upd', bundle, `jsonb_strip_nulls(jsonb_build_object('traceparent', upd.traceparent))`)}),
   next AS (
     SELECT min(d.run_at) AS run_at FROM unnest($1::text[]) AS s(type)
     CROSS JOIN LATERAL (
       SELECT run_at FROM tasks WHERE status = 'scheduled' AND type = s.type AND run_at > now() ORDER BY run_at LIMIT 1) d)
   SELECT (SELECT extract(epoch FROM next.run_at - clock_timestamp()) * 1000 FROM next)::float8 AS next_due_in_ms, upd.*
     FROM (SELECT 1) one LEFT JOIN upd ON true`;
}
/** @internal The promotion statement at the default bundle size (its plan is checked in the tests). */
export const PROMOTE_DUE_SQL = promoteDueSql(DEFAULT_BUNDLE_SIZE);

/**
 * @internal The promoter's probe between promotions ($1 the types): how long until the earliest scheduled task
 * of those types is due (zero or less: due now), by the database's clock; no row when none is scheduled. One
 * descent of the partial index `tasks_scheduled_due` (type, run_at) per type, whatever waits behind or
 * beside it, and no write: an idle round does not even notify the relays.
 */
export const NEXT_DUE_SQL = `SELECT extract(epoch FROM min(d.run_at) - clock_timestamp())::float8 * 1000 AS due_in_ms
  FROM unnest($1::text[]) AS s(type)
  CROSS JOIN LATERAL (
    SELECT run_at FROM tasks WHERE status = 'scheduled' AND type = s.type ORDER BY run_at LIMIT 1) d
  HAVING min(d.run_at) IS NOT NULL`;

/**
 * Owner quotas (docs/ARCHITECTURE.md, "Owner quotas"). A woken task that has not been claimed yet
 * takes its owner's free room first for this long; after it, it counts no more (its message may be
 * lost: the queued sweep re-sends it, and the room must not stay blocked meanwhile).
 */
const PENDING_CLAIM_WINDOW_MS = 60_000;
/** Most held tasks one statement wakes when a limit is removed or the sweeper finds room (the rest on the next). */
export const WAKE_BATCH = 1000;

/**
 * Whether any owner has a maxRunning: one probe per statement (a one-time filter), so a deployment
 * without limits skips the per-owner work of freed slots altogether.
 */
const ANY_MAX_RUNNING = `(SELECT EXISTS (SELECT 1 FROM owner_limits WHERE max_running IS NOT NULL))`;

/** The one SQL test that an owner has a maxRunning: a primary-key probe of a small table, false for most owners. */
const HAS_MAX_RUNNING = (owner: string) =>
  `EXISTS (SELECT 1 FROM owner_limits l WHERE l.owner = ${owner} AND l.max_running IS NOT NULL)`;

/**
 * @internal Wakes held tasks: `freed` is a relation of (owner, ids, n), one row per owner in owner
 * order (the wake function locks owner rows: always in the same order, so wakers never deadlock);
 * `woken` are the tasks set free, `wob` their work messages.
 */
function wakeHeldSql(freed: string, bundle: number): string {
  return `woken AS (
      SELECT w.* FROM ${freed} f CROSS JOIN LATERAL owner_wake_held(f.owner, f.ids, f.n, ${PENDING_CLAIM_WINDOW_MS}) w),
    wob AS (${enqueueWorkSql('woken upd', bundle)})`;
}

/**
 * @internal maxQueued at submit, over createMany's `input` (owner, grp, ord): `lim` counts each limited
 * owner's non-terminal tasks under its row lock (owner_queue_count, in owner order, so two submits
 * cannot both take the last room); `refused` the groups that would pass it, in input order (a batch is
 * one group: all of it or none).
 */
const QUEUE_LIMIT_SQL = `lim AS (
         SELECT o.owner, q.max_queued, q.queued
           FROM (SELECT DISTINCT input.owner FROM input JOIN owner_limits l ON l.owner = input.owner
                  WHERE l.max_queued IS NOT NULL ORDER BY input.owner) o
           CROSS JOIN LATERAL owner_queue_count(o.owner) q WHERE q.max_queued IS NOT NULL),
       refused AS (
         SELECT g.owner, g.grp, lim.max_queued, lim.queued FROM (
           SELECT owner, grp, sum(count(*)) OVER (PARTITION BY owner ORDER BY min(ord)) AS upto
             FROM input WHERE owner IN (SELECT owner FROM lim) GROUP BY owner, grp) g
           JOIN lim ON lim.owner = g.owner
          WHERE lim.queued + g.upto > lim.max_queued)`;

/**
 * @internal The claim's hold-back, for the tasks `allowed` to be claimed that need a new run slot
 * (queued or retrying; a takeover already has one): `lim` is each limited owner's room, counted under
 * its row lock (owner_run_room, in owner order); `over` the tasks past it, after the ones that go
 * first (priority, then age); `held` parks them: they stay queued (or retrying) with `held_since` and
 * the reason naming the limit, and their delivery is acked with no successor (ack-rule.ts, `parked`).
 * Owners without a maxRunning never reach the function: one probe of `owner_limits` per owner.
 */
function OWNER_LIMITS_SQL(allowed: string): string {
  return `lim AS (
      SELECT o.owner, o.max_running, owner_run_room(o.owner) AS room
        FROM (SELECT DISTINCT cur.owner, l.max_running FROM cur JOIN owner_limits l ON l.owner = cur.owner
               WHERE l.max_running IS NOT NULL AND cur.status IN ('queued', 'retrying') ORDER BY cur.owner) o),
    over AS (
      SELECT r.id, r.owner, r.max_running FROM (
        SELECT cur.id, cur.owner, lim.max_running, lim.room,
               row_number() OVER (PARTITION BY cur.owner ORDER BY cur.priority DESC, cur.created_at, cur.id) AS rn
          FROM cur JOIN x ON x.id = cur.id JOIN lim ON lim.owner = cur.owner
         WHERE cur.status IN ('queued', 'retrying') AND ${allowed}) r
       WHERE r.room IS NOT NULL AND r.rn > greatest(r.room, 0)),
    held AS (
      UPDATE tasks t SET held_since = coalesce(t.held_since, now()), updated_at = now(),
             held_reason = 'owner ' || over.owner || ' is at maxRunning ' || over.max_running
        FROM over WHERE t.id = over.id
      RETURNING t.*)`;
}

/**
 * @internal A claim accepts a message this much before the task's `run_after`: a retry tier's message is
 * published after the commit that set `run_after`, so it comes back late, never early, except for
 * clock jitter between the broker and the database. Anything earlier is a duplicate or an early
 * copy and is deferred, so it cannot skip the backoff.
 */
export const CLAIM_EARLY_TOLERANCE_MS = 250;

/**
 * The task state machine of docs/ARCHITECTURE.md ("Task states"). Every transition is ONE statement:
 * lock the row, update it if the current state allows, append the event (and the outbox
 * row where a message must follow) in the same statement, and return either the new row
 * or the row as it is. Repeating a transition is harmless; fenced transitions carry the
 * attempt number so a run that lost its lease cannot write.
 */
/** @internal Told about every applied transition (metrics); optional so the state machine stands alone in tests. */
export interface TransitionObserver {
  transitioned(from: TaskStatus | null, to: TaskStatus, task: Task): void;
}
/** @internal Injection token of the TransitionObserver. */
export const TRANSITION_OBSERVER = Symbol('TRANSITION_OBSERVER');

@Injectable()
export class TaskStateMachine {
  /** Tasks per work message at most (TASK_BUNDLE_SIZE). */
  private readonly bundle: number;
  private readonly promoteSql: string;

  constructor(
    private readonly db: DataSource,
    @Optional() @Inject(TRANSITION_OBSERVER) private readonly observer?: TransitionObserver | null,
    @Optional() @Inject(DATABASE_CONFIG) config?: Pick<DatabaseConfig, 'TASK_BUNDLE_SIZE'> | null,
  ) {
    this.bundle = config?.TASK_BUNDLE_SIZE ?? DEFAULT_BUNDLE_SIZE;
    this.promoteSql = promoteDueSql(this.bundle);
  }

  /**
   * Inserts a task (as `queued` with its message in the outbox when `start`, `scheduled` when started and
   * due later), idempotent per (owner, idempotency key).
   */
  async create(
    input: NewTask,
    opts: { start: boolean; actor: string; traceparent?: string },
    manager?: EntityManager,
  ): Promise<CreateResult> {
    // maxQueued: counted under the owner's row lock (owner_queue_count), so two submits cannot both pass.
    // A repeat of a key already used is answered with its task, limit or not.
    const sql = `
      WITH lim AS (
        SELECT q.max_queued, q.queued FROM owner_limits l CROSS JOIN LATERAL owner_queue_count(l.owner) q
         WHERE l.owner = $1 AND l.max_queued IS NOT NULL AND q.max_queued IS NOT NULL),
      ins AS (
        INSERT INTO tasks (id, owner, type, payload, status, max_attempts, timeout_ms, priority, idempotency_key, request_hash, run_at,
                           traceparent, callback_url)
        SELECT $15::uuid, $1::text, $2::text, $3::jsonb, ${startStatusSql('$4::boolean', runAtSql('$12', '$13'))}, $5::int, $6::int,
               $7::smallint, $8::text, $9::text, ${runAtSql('$12', '$13')},
               ${scheduledTraceparentSql(startStatusSql('$4::boolean', runAtSql('$12', '$13')), '$11::text')}, $14::text
         WHERE NOT EXISTS (SELECT 1 FROM lim WHERE lim.queued >= lim.max_queued)
        ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *),
      ev AS (
        INSERT INTO task_events (task_id, from_status, to_status, attempt, actor)
        SELECT id, NULL, status, 0, $10 FROM ins),
      ob AS (
        ${enqueueWorkSql(`ins upd WHERE upd.status = 'queued'`, 1, `jsonb_strip_nulls(jsonb_build_object('traceparent', $11::text))`)})
      SELECT true AS applied, ins.*, NULL::int AS limit_max_queued, NULL::int AS limit_queued FROM ins
      UNION ALL
      SELECT false AS applied, t.*, NULL, NULL FROM tasks t
       WHERE t.owner = $1 AND t.idempotency_key = $8 AND NOT EXISTS (SELECT 1 FROM ins)
      UNION ALL
      SELECT NULL, (NULL::tasks).*, lim.max_queued, lim.queued FROM lim
       WHERE lim.queued >= lim.max_queued AND NOT EXISTS (SELECT 1 FROM ins)
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.owner = $1 AND t.idempotency_key = $8)`;
    const params = [
      input.owner,
      input.type,
      JSON.stringify(input.payload ?? null),
      opts.start,
      input.maxAttempts,
      input.timeoutMs,
      input.priority ?? 0,
      input.idempotencyKey ?? null,
      input.requestHash ?? null,
      opts.actor,
      opts.traceparent ?? null,
      input.runAt ?? null,
      input.delayMs ?? null,
      input.callbackUrl ?? null,
      input.id ?? newTaskId(),
    ];
    // A concurrent insert of the same key commits after this statement's snapshot was taken:
    // ON CONFLICT then skips, and the row is visible only to the next statement.
    for (let tries = 0; tries < 3; tries++) {
      const rows = await this.rows(sql, params, manager);
      const refusal = rows.find((r) => r['applied'] === null);
      if (refusal && rows.length === 1)
        throw new OwnerQueueFullError(
          input.owner,
          Number(refusal['limit_max_queued']),
          Number(refusal['limit_queued']),
        );
      if (rows.length > 0) {
        const created = rows[0]['applied'] === true;
        const task = this.hydrate(rows[0]);
        if (created) this.observer?.transitioned(null, task.status, task);
        return { created, task };
      }
    }
    throw new Error(`task with idempotency key ${input.idempotencyKey} neither inserted nor found`);
  }

  /**
   * Inserts many tasks in ONE statement, each with its own id, actor and traceparent: the same
   * task, event and outbox rows as `create` without an idempotency key. All or nothing. A schedule's
   * fire whose (scheduleId, scheduledFor) exists already is skipped (not in the result): that unique
   * key, not a lock, makes a fire exactly once. `manager`: inside the caller's transaction.
   */
  async createMany(items: NewTaskRow[], manager?: EntityManager): Promise<Map<string, Task | QueueLimitRefusal>> {
    const created = new Map<string, Task | QueueLimitRefusal>();
    if (items.length === 0) return created;
    const input = items.map((t, ord) => ({
      grp: t.group ?? t.id,
      ord,
      id: t.id,
      owner: t.owner,
      type: t.type,
      payload: t.payload ?? null,
      max_attempts: t.maxAttempts,
      timeout_ms: t.timeoutMs,
      priority: t.priority ?? 0,
      start: t.start,
      run_at: t.runAt ?? null,
      delay_ms: t.delayMs ?? null,
      actor: t.actor,
      traceparent: t.traceparent ?? null,
      callback_url: t.callbackUrl ?? null,
      schedule_id: t.scheduleId ?? null,
      scheduled_for: t.scheduledFor ?? null,
    }));
    const rows = await this.rows(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb)
           AS x(id uuid, owner text, type text, payload jsonb, max_attempts int, timeout_ms int, priority smallint, start boolean,
                run_at timestamptz, delay_ms bigint, actor text, traceparent text, callback_url text, grp text, ord int,
                schedule_id uuid, scheduled_for timestamptz)),
       ${QUEUE_LIMIT_SQL},
       ins AS (
         INSERT INTO tasks (id, owner, type, payload, status, max_attempts, timeout_ms, priority, run_at, traceparent, callback_url,
                            schedule_id, scheduled_for)
         SELECT id, owner, type, payload, ${startStatusSql('start', runAtSql('run_at', 'delay_ms'))}, max_attempts, timeout_ms,
                priority, ${runAtSql('run_at', 'delay_ms')},
                ${scheduledTraceparentSql(startStatusSql('start', runAtSql('run_at', 'delay_ms')), 'traceparent')}, callback_url,
                schedule_id, scheduled_for
           FROM input
          WHERE NOT EXISTS (SELECT 1 FROM refused r WHERE r.owner = input.owner AND r.grp = input.grp)
         ON CONFLICT (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL DO NOTHING
         RETURNING *),
       ev AS (
         INSERT INTO task_events (task_id, from_status, to_status, attempt, actor)
         SELECT ins.id, NULL, ins.status, 0, input.actor FROM ins JOIN input USING (id)),
       ob AS (
         ${enqueueWorkSql(`ins upd JOIN input USING (id) WHERE upd.status = 'queued'`, this.bundle, `jsonb_strip_nulls(jsonb_build_object('traceparent', input.traceparent))`)})
       SELECT ins.*, NULL::uuid AS refused_id, NULL::int AS limit_max_queued, NULL::int AS limit_queued FROM ins
       UNION ALL
       SELECT (NULL::tasks).*, input.id, r.max_queued, r.queued FROM refused r JOIN input ON input.owner = r.owner AND input.grp = r.grp`,
      [JSON.stringify(input)],
      manager,
    );
    for (const row of rows) {
      if (row['refused_id'] !== null) {
        const owner = items.find((i) => i.id === row['refused_id'])?.owner ?? '';
        created.set(String(row['refused_id']), {
          refused: true,
          owner,
          maxQueued: Number(row['limit_max_queued']),
          queued: Number(row['limit_queued']),
        });
        continue;
      }
      const task = this.hydrate(row);
      this.observer?.transitioned(null, task.status, task);
      created.set(task.id, task);
    }
    return created;
  }

  /** The row as it is, or null when there is no such task. */
  async find(id: string): Promise<Task | null> {
    const rows = await this.rows(`SELECT * FROM tasks WHERE id = $1`, [id]);
    return rows.length > 0 ? this.hydrate(rows[0]) : null;
  }

  /** new -> queued, with the work message in the outbox; new -> scheduled when its due time is still ahead. */
  start(id: string, actor: string): Promise<TransitionResult> {
    return this.one(id, {
      from: ['new'],
      to: 'queued',
      toSql: startStatusSql('true', 'cur.run_at'),
      actor,
      enqueue: true,
    });
  }

  /**
   * scheduled -> queued for the due tasks of `types`, oldest due first, at most `limit`, with their work
   * messages in the outbox: ONE statement for the batch. Rows another promoter (or a cancel) holds are
   * skipped, so promoters of every worker may run at once. The same statement probes for the next due
   * task of those types: both start at the low end of each type's part of the partial index
   * `tasks_scheduled_due` (type, run_at), so a round costs the same with a million tasks waiting for
   * next month, or due soon but of types this worker does not serve, as with none (EXPLAIN in
   * task-state-machine.int-spec.ts).
   */
  async promoteDue(types: readonly string[], limit: number, actor: string): Promise<PromotionResult> {
    // An outbox INSERT notifies the relays on commit when it inserted rows (the owner-limits migration;
    // before it, even an empty one did): the promoter runs this only when `nextDueInMs` says something is due.
    const rows = await this.plannedRows(this.promoteSql, [types, limit, actor]);
    const promoted: Task[] = [];
    for (const row of rows) {
      if (row['id'] === null) continue;
      const task = this.hydrate(row);
      this.observer?.transitioned('scheduled', task.status, task);
      promoted.push(task);
    }
    const next = rows[0]?.['next_due_in_ms'];
    return { promoted, nextDueInMs: next === null || next === undefined ? null : Number(next) };
  }

  /** Ms until the earliest `scheduled` task of `types` is due (<= 0: due now); null when none is scheduled. */
  async nextDueInMs(types: readonly string[]): Promise<number | null> {
    const rows = await this.rows<{ due_in_ms: number }>(NEXT_DUE_SQL, [types]);
    return rows.length > 0 ? Number(rows[0].due_in_ms) : null;
  }

  /**
   * queued | retrying -> running, or takeover of a running task whose lease expired while it
   * still has attempts left. The new `attempt` is the run's fencing token.
   */
  claim(id: string, workerId: string, leaseMs: number): Promise<TransitionResult> {
    return this.claimMany([id], workerId, leaseMs).then((r) => r.get(id) ?? NOT_FOUND);
  }

  /** `claim` for many tasks in one statement (the worker batches its deliveries' claims). */
  claimMany(ids: string[], workerId: string, leaseMs: number): Promise<Map<string, TransitionResult>> {
    return this.transitionMany(
      ids.map((id) => ({ id })),
      {
        from: ['queued', 'retrying', 'running'],
        to: 'running',
        guard: `AND (cur.status <> 'running' OR (cur.lease_expires_at < now() AND cur.attempt - cur.attempt_base < cur.max_attempts))
              AND (cur.run_after IS NULL OR cur.run_after <= now() + ${CLAIM_EARLY_TOLERANCE_MS} * interval '1 millisecond')`,
        set: `attempt = cur.attempt + 1, lease_owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond',
            started_at = coalesce(cur.started_at, now()), run_after = NULL, progress_percent = 0, progress_message = NULL,
            held_since = NULL, held_reason = NULL`,
        params: [leaseMs],
        actor: workerId,
        ownerLimits: true,
      },
    );
  }

  /** Extends the lease of the run holding `token`. Not applied: the run was cancelled or taken over, abort it. */
  async heartbeat(id: string, token: number, workerId: string, leaseMs: number): Promise<boolean> {
    return (await this.heartbeatMany([{ id, token }], workerId, leaseMs)).has(id);
  }

  /** Extends the leases of many runs in one statement; returns the ids still owned (the others: abort). */
  async heartbeatMany(runs: { id: string; token: number }[], workerId: string, leaseMs: number): Promise<Set<string>> {
    if (runs.length === 0) return new Set();
    // No join: arrays matched with `= ANY`, which PostgreSQL (14+) hashes. A join against the runs
    // (jsonb or unnest) nested-looped on a table without statistics (autovacuum off): 2,000
    // runs x 2,000 rows, 0.8 s per heartbeat. This stays linear whatever the estimates.
    const rows = await this.rows<{ id: string }>(
      `UPDATE tasks t SET lease_expires_at = now() + $3 * interval '1 millisecond'
        WHERE t.id = ANY($1::uuid[]) AND (t.id::text || '/' || t.attempt) = ANY($4::text[])
          AND t.status = 'running' AND t.lease_owner = $2
        RETURNING t.id`,
      [runs.map((r) => r.id), workerId, leaseMs, runs.map((r) => `${r.id.toLowerCase()}/${r.token}`)],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** Records progress (and extends the lease) for the run holding `token`. */
  async progress(
    id: string,
    token: number,
    workerId: string,
    percent: number,
    message: string | null,
    leaseMs: number,
  ): Promise<boolean> {
    // The progress event is kept (task_progress) in the same statement: a resumed stream replays it.
    const rows = await this.rows(
      `WITH upd AS (
         UPDATE tasks SET progress_percent = $5, progress_message = $6, updated_at = now(),
                lease_expires_at = now() + $4 * interval '1 millisecond'
          WHERE id = $1 AND status = 'running' AND attempt = $2 AND lease_owner = $3 RETURNING id, attempt, progress_percent, progress_message),
       pe AS (${PROGRESS_EVENT_SQL})
       SELECT id FROM upd`,
      [id, token, workerId, leaseMs, Math.max(0, Math.min(100, Math.round(percent))), message],
    );
    return rows.length === 1;
  }

  /** running -> succeeded, only for the run holding `token`. */
  succeed(id: string, token: number, result: unknown, workerId: string): Promise<TransitionResult> {
    return this.succeedMany([{ id, token, result }], workerId).then((r) => r.get(id) ?? NOT_FOUND);
  }

  /** `succeed` for many runs in one statement, each fenced by its own token. */
  succeedMany(
    runs: { id: string; token: number; result: unknown }[],
    workerId: string,
  ): Promise<Map<string, TransitionResult>> {
    return this.transitionMany(
      runs.map((r) => ({ id: r.id, token: r.token, result: r.result ?? null })),
      {
        from: ['running'],
        to: 'succeeded',
        inputs: 'token int, result jsonb',
        guard: `AND cur.attempt = x.token AND cur.lease_owner = $3`,
        set: `result = x.result, error = NULL, progress_percent = 100, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL`,
        params: [workerId],
        actor: workerId,
        wakeHeld: true,
      },
    );
  }

  /**
   * running -> retrying, only with attempts left; the caller then publishes to a retry tier whose
   * delay is `retryInMs`. The due time is taken from the database's clock, which claims compare it with.
   */
  failRetryable(
    id: string,
    token: number,
    error: TaskError,
    retryInMs: number,
    workerId: string,
  ): Promise<TransitionResult> {
    return this.one(
      { id, token, error, retry_in_ms: Math.round(retryInMs) },
      {
        from: ['running'],
        to: 'retrying',
        inputs: 'token int, error jsonb, retry_in_ms bigint',
        guard: `AND cur.attempt = x.token AND cur.lease_owner = $3 AND cur.attempt - cur.attempt_base < cur.max_attempts`,
        set: `error = x.error, run_after = now() + x.retry_in_ms * interval '1 millisecond', lease_owner = NULL, lease_expires_at = NULL`,
        params: [workerId],
        eventError: 'x.error',
        actor: workerId,
        wakeHeld: true,
      },
    );
  }

  /** running -> failed, for the run holding `token`. */
  failFinal(id: string, token: number, error: TaskError, workerId: string): Promise<TransitionResult> {
    return this.one(
      { id, token, error },
      {
        from: ['running'],
        to: 'failed',
        inputs: 'token int, error jsonb',
        guard: `AND cur.attempt = x.token AND cur.lease_owner = $3`,
        set: `error = x.error, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL`,
        params: [workerId],
        eventError: 'x.error',
        actor: workerId,
        wakeHeld: true,
      },
    );
  }

  /** running (lease expired, every attempt used) -> failed: the task keeps killing its workers. */
  failAbandoned(id: string, error: TaskError, actor: string): Promise<TransitionResult> {
    return this.one(
      { id, error },
      {
        from: ['running'],
        to: 'failed',
        inputs: 'error jsonb',
        guard: `AND cur.lease_expires_at < now() AND cur.attempt - cur.attempt_base >= cur.max_attempts`,
        set: `error = x.error, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL`,
        eventError: 'x.error',
        actor,
        wakeHeld: true,
      },
    );
  }

  /** Any non-terminal state -> cancelled; a running task's worker is signalled through the control exchange. */
  cancel(id: string, actor: string): Promise<TransitionResult> {
    return this.one(id, {
      from: ['new', 'scheduled', 'queued', 'retrying', 'running'],
      to: 'cancelled',
      set: `finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, run_after = NULL, held_since = NULL, held_reason = NULL`,
      actor,
      signalCancel: true,
      wakeHeld: true,
    });
  }

  /**
   * running -> queued on graceful shutdown, for the run holding `token`. The hand-over does not
   * count against maxAttempts; the worker then requeues the delivery it holds.
   */
  release(id: string, token: number, workerId: string): Promise<TransitionResult> {
    return this.one(
      { id, token },
      {
        from: ['running'],
        to: 'queued',
        inputs: 'token int',
        guard: `AND cur.attempt = x.token AND cur.lease_owner = $3`,
        set: `attempt_base = cur.attempt_base + 1, lease_owner = NULL, lease_expires_at = NULL, progress_percent = 0, progress_message = NULL`,
        params: [workerId],
        actor: workerId,
        wakeHeld: true,
      },
    );
  }

  /** failed | cancelled -> queued (a user's or admin's retry), with a fresh attempt budget and its message in the outbox. */
  retry(id: string, actor: string): Promise<TransitionResult> {
    return this.one(id, {
      from: ['failed', 'cancelled'],
      to: 'queued',
      set: `attempt_base = cur.attempt, result = NULL, error = NULL, finished_at = NULL, progress_percent = 0, progress_message = NULL`,
      actor,
      enqueue: true,
    });
  }

  /**
   * Queues another work message for tasks whose message may be gone (reconcile, redrive): only
   * tasks still in one of `statuses`. Not a transition: the claim absorbs any duplicate. Their
   * `updated_at` moves on, so the sweeper leaves them alone for its grace period.
   */
  async enqueueAgain(ids: string[], statuses: readonly TaskStatus[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.plannedRows<{ id: string }>(
      `WITH upd AS (
         UPDATE tasks SET updated_at = now() WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[]) RETURNING id, type, priority)
       , ob AS (${enqueueWorkSql('upd', this.bundle)})
       SELECT id FROM upd`,
      [ids, statuses],
    );
    return rows.map((r) => r.id);
  }

  /**
   * The sweeper's query: tasks of `types` whose message may be gone (`retrying` well past its due
   * time, `running` with a lease long expired) get a new work message. Their `updated_at` moves on, so
   * the next sweep leaves them alone for `graceMs` (the due time stays: a claim compares it).
   */
  async requeueStranded(graceMs: number, limit: number, types: readonly string[]): Promise<string[]> {
    const rows = await this.rows<{ id: string }>(
      `WITH s AS (
         SELECT id FROM tasks
          WHERE ((status = 'retrying' AND run_after < now() - $1 * interval '1 millisecond' AND held_since IS NULL)
                 OR (status = 'running' AND lease_expires_at < now() - $1 * interval '1 millisecond'))
            AND updated_at < now() - $1 * interval '1 millisecond' AND type = ANY($3::text[])
          ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED),
       upd AS (
         UPDATE tasks t SET updated_at = now() FROM s WHERE t.id = s.id RETURNING t.id, t.type, t.priority),
       ob AS (${enqueueWorkSql('upd', this.bundle)})
       SELECT id FROM upd`,
      [graceMs, limit, types],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Queued tasks the broker may have lost: `queued`, untouched for `graceMs`, of one of `types`, and
   * older than every unsent outbox row (so their message was confirmed by the broker before this
   * call). The caller asks the broker whether their queue is empty and idle, then calls
   * `requeueLostQueued` for them. Oldest first, at most `limit`.
   */
  async findIdleQueued(types: readonly string[], graceMs: number, limit: number): Promise<string[]> {
    const rows = await this.plannedRows<{ id: string }>(
      `SELECT id FROM tasks
        WHERE status = 'queued' AND held_since IS NULL AND type = ANY($1::text[])
          AND updated_at < now() - $2 * interval '1 millisecond'
          AND updated_at < coalesce((SELECT min(created_at) FROM (SELECT created_at FROM outbox ORDER BY id LIMIT 1000) o), 'infinity')
        ORDER BY updated_at LIMIT $3`,
      [types, graceMs, limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * A new work message for each of `ids` still `queued` and untouched for `graceMs` (rechecked under
   * the row lock, so two sweepers racing re-enqueue a task once); returns the ids re-enqueued.
   */
  async requeueLostQueued(ids: string[], graceMs: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<{ id: string }>(
      `WITH upd AS (
         UPDATE tasks SET updated_at = now()
          WHERE id = ANY($1::uuid[]) AND status = 'queued' AND held_since IS NULL
            AND updated_at < now() - $2 * interval '1 millisecond'
          RETURNING id, type, priority),
       ob AS (${enqueueWorkSql('upd', this.bundle)})
       SELECT id FROM upd`,
      [ids, graceMs],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Wakes held tasks of `owner` up to its room, WAKE_BATCH at most (all of them, a batch at a time,
   * when it has no maxRunning any more): after an admin raised or removed its limit. In the caller's
   * transaction when `manager` is given. Returns the ids woken (their work messages are in the outbox).
   */
  async wakeHeld(owner: string, manager?: EntityManager): Promise<string[]> {
    const rows = await this.rows<{ id: string }>(
      `WITH f AS (SELECT $1::text AS owner, '{}'::uuid[] AS ids, $2::int AS n), ${wakeHeldSql('f', this.bundle)} SELECT id FROM woken`,
      [owner, WAKE_BATCH],
      manager,
    );
    return rows.map((r) => r.id);
  }

  /**
   * The sweeper's safety net for held tasks: every owner with held tasks (at most `owners`, found by a
   * loose scan of the partial index `tasks_held`, one descent per owner) gets a wake up to its room.
   * Normally a freed slot wakes them in the statement that frees it and this finds no room; it
   * matters when a wake went missing (a limit row deleted by hand, a migration, a bug).
   */
  async wakeStrandedHeld(owners: number): Promise<string[]> {
    const rows = await this.plannedRows<{ id: string }>(
      `WITH RECURSIVE o AS (
         (SELECT owner FROM tasks WHERE held_since IS NOT NULL AND status IN ('queued', 'retrying') ORDER BY owner LIMIT 1)
         UNION ALL
         SELECT (SELECT t.owner FROM tasks t
                  WHERE t.held_since IS NOT NULL AND t.status IN ('queued', 'retrying') AND t.owner > o.owner
                  ORDER BY t.owner LIMIT 1)
           FROM o WHERE o.owner IS NOT NULL),
       f AS (SELECT owner, '{}'::uuid[] AS ids, $2::int AS n FROM o WHERE owner IS NOT NULL ORDER BY owner LIMIT $1),
       ${wakeHeldSql('f', this.bundle)}
       SELECT id FROM woken`,
      [owners, WAKE_BATCH],
    );
    return rows.map((r) => r.id);
  }

  private async one(input: string | TransitionInput, spec: TransitionSpec): Promise<TransitionResult> {
    const item = typeof input === 'string' ? { id: input } : input;
    return (await this.transitionMany([item], spec)).get(item.id) ?? NOT_FOUND;
  }

  /**
   * One statement for any number of tasks: lock their rows (in id order, so concurrent batches
   * cannot deadlock), apply the transition to each row whose state (and token) allows it, append
   * one event per applied row, and return every row either as changed or as it is.
   * Callers must not pass the same id twice in one batch.
   * `= ANY(ARRAY(...))`, not `IN (SELECT ...)`: the planner guesses 100 rows for
   * jsonb_to_recordset and, on a mid-sized table, hash-joins it against a scan of every task.
   */
  private async transitionMany(items: TransitionInput[], spec: TransitionSpec): Promise<Map<string, TransitionResult>> {
    const results = new Map<string, TransitionResult>();
    if (items.length === 0) return results;
    const params = [JSON.stringify(items), spec.actor, ...(spec.params ?? [])];
    const allowed = `cur.status IN (${spec.from.map((st) => `'${st}'`).join(', ')}) ${spec.guard ?? ''}`;
    const sql = `
      WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid${spec.inputs ? `, ${spec.inputs}` : ''})),
      cur AS (${lockTasksByIdSql('SELECT id FROM x')}),
      ${spec.ownerLimits ? `${OWNER_LIMITS_SQL(allowed)},` : ''}
      upd AS (
        UPDATE tasks t SET status = ${spec.toSql ?? `'${spec.to}'`}, updated_at = now()${spec.set ? `, ${spec.set}` : ''}
          FROM cur JOIN x ON x.id = cur.id
         WHERE t.id = cur.id AND ${allowed}
               ${spec.ownerLimits ? 'AND NOT EXISTS (SELECT 1 FROM over WHERE over.id = cur.id)' : ''}
        RETURNING t.*),
      ev AS (
        INSERT INTO task_events (task_id, from_status, to_status, attempt, actor, error)
        SELECT upd.id, cur.status, upd.status, upd.attempt, $2, ${spec.eventError ?? 'NULL'}
          FROM upd JOIN cur ON cur.id = upd.id JOIN x ON x.id = upd.id)
      ${spec.enqueue ? `, ob AS (${enqueueWorkSql(`upd WHERE upd.status = 'queued'`, this.bundle)})` : ''}
      ${isTerminal(spec.to) ? `, wh AS (${webhookDeliverySql('upd')})` : ''}
      ${
        spec.signalCancel
          ? `, sig AS (INSERT INTO outbox (exchange, routing_key, correlation_id, body)
                      SELECT 'control', 'cancel', upd.id::text,
                             ${cancelMessageSql('upd.id', 'cur.attempt')}
                        FROM upd JOIN cur ON cur.id = upd.id WHERE cur.status = 'running')`
          : ''
      }
      ${
        spec.wakeHeld
          ? `, freed AS (
               SELECT f.owner, array_agg(f.id) AS ids, count(*)::int AS n
                 FROM (SELECT cur.owner, cur.id FROM cur WHERE cur.status = 'running' AND ${ANY_MAX_RUNNING}
                          AND cur.id IN (SELECT id FROM upd)) f
                WHERE ${HAS_MAX_RUNNING('f.owner')}
                GROUP BY f.owner ORDER BY f.owner),
             ${wakeHeldSql('freed', this.bundle)}`
          : ''
      }
      SELECT true AS applied, cur.status AS previous_status, upd.* FROM upd JOIN cur ON cur.id = upd.id
      UNION ALL
      ${spec.ownerLimits ? `SELECT false, cur.status, held.* FROM held JOIN cur ON cur.id = held.id UNION ALL` : ''}
      SELECT false AS applied, cur.status AS previous_status, cur.* FROM cur
       WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = cur.id)
             ${spec.ownerLimits ? 'AND NOT EXISTS (SELECT 1 FROM held WHERE held.id = cur.id)' : ''}`;
    for (const row of await this.rows(sql, params)) {
      const applied = row['applied'] === true;
      const task = this.hydrate(row);
      if (applied) this.observer?.transitioned(row['previous_status'] as TaskStatus, task.status, task);
      results.set(task.id, { applied, task });
    }
    return results;
  }

  /**
   * A statement of an operator's or a sweeper's path, not a hot one: planned on every call, never
   * prepared, so its plan always fits the table as it is now (the hot statements are prepared and
   * kept plan-robust instead: prepared-plans.int-spec.ts). Its top level must be a SELECT.
   */
  private async plannedRows<R = Record<string, any>>(sql: string, params: unknown[]): Promise<R[]> {
    return (await this.db.query(sql, params)) as R[];
  }

  /** Runs a statement and returns its rows, whatever its command (TypeORM's plain result differs for UPDATE). */
  private async rows<R = Record<string, any>>(sql: string, params: unknown[], manager?: EntityManager): Promise<R[]> {
    const runner = manager?.queryRunner;
    if (!runner) return preparedQuery<R>(this.db, sql, params);
    const result = await runner.query(sql, params, true);
    return result.records as R[];
  }

  /** Maps a raw `tasks` row to the entity through TypeORM's own column metadata. */
  hydrate(row: Record<string, unknown>): Task {
    const meta = this.db.getMetadata(Task);
    const task = meta.create() as Task;
    for (const column of meta.columns) {
      column.setEntityValue(task, this.db.driver.prepareHydratedValue(row[column.databaseName], column));
    }
    return task;
  }
}
