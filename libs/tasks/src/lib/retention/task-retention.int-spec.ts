import { waitFor } from '@tasksys/testing';
import { createTestDatabase, type TestDatabase } from '../../testing';
import type { Task } from '../entities';
import { TaskReports } from '../queries/task-reports';
import { TaskStateMachine } from '../task-state-machine';
import type { TaskStatus } from '../task-status';
import type { RetentionConfig } from './retention.config';
import { DELETE_BATCH_SQL, TaskRetention } from './task-retention.service';

const DAY_MS = 86_400_000;
const LEASE = 30_000;
const err = { code: 'TEST.FAILED', message: 'boom' };

describe('TaskRetention (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
  });
  afterAll(() => t.drop());
  afterEach(() => t.db.query(`TRUNCATE tasks, task_events, task_reports, outbox CASCADE`));

  const retention = (config: Partial<RetentionConfig> = {}, db: TestDatabase = t) =>
    new TaskRetention(
      db.db,
      {
        TASK_RETENTION_MS: 30 * DAY_MS,
        TASK_RETENTION_BATCH_SIZE: 1000,
        TASK_RETENTION_PAUSE_MS: 0,
        TASK_RETENTION_INTERVAL_MS: 60_000,
        ...config,
      },
      db.config,
    );

  async function newTask(start: boolean, extra: Partial<{ key: string; delayMs: number }> = {}): Promise<Task> {
    const { task } = await sm.create(
      {
        owner: 'alice',
        type: 'demo.sleep',
        payload: { ms: 1 },
        maxAttempts: 3,
        timeoutMs: 60_000,
        idempotencyKey: extra.key,
        delayMs: extra.delayMs,
      },
      { start, actor: 'owner:alice' },
    );
    return task;
  }

  /** A task in `status` the way the product gets there (so with its real events). */
  async function taskIn(status: TaskStatus, key?: string): Promise<Task> {
    if (status === 'scheduled') return newTask(true, { delayMs: 3_600_000 });
    const task = await newTask(status !== 'new', { key });
    if (status === 'new' || status === 'queued') return task;
    const claimed = await sm.claim(task.id, 'w1', LEASE);
    const token = claimed.task!.attempt;
    if (status === 'running') return claimed.task!;
    const to = {
      retrying: () => sm.failRetryable(task.id, token, err, 0, 'w1'),
      succeeded: () => sm.succeed(task.id, token, { ok: true }, 'w1'),
      failed: () => sm.failFinal(task.id, token, err, 'w1'),
      cancelled: () => sm.cancel(task.id, 'owner:alice'),
    }[status]!;
    const r = await to();
    expect(r.applied).toBe(true);
    return r.task!;
  }

  /** Moves a task's every timestamp `ageMs` into the past, as if it had lived then. */
  const age = (ids: string[], ageMs: number) =>
    t.db.query(
      `UPDATE tasks SET created_at = created_at - $2::bigint * interval '1 millisecond',
              updated_at = updated_at - $2::bigint * interval '1 millisecond',
              finished_at = finished_at - $2::bigint * interval '1 millisecond'
        WHERE id = ANY($1::uuid[])`,
      [ids, ageMs],
    );
  /** The outbox relay's part: the work messages written so far were confirmed and deleted. */
  const relayed = () => t.db.query(`DELETE FROM outbox`);
  const present = async (ids: string[]) =>
    (await t.db.query(`SELECT id FROM tasks WHERE id = ANY($1::uuid[])`, [ids])).map((r: { id: string }) => r.id);
  const eventCount = async (ids: string[]) =>
    (await t.db.query(`SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[])`, [ids]))[0].n;

  it('deletes finished tasks of every terminal status older than the retention with their events, keeps the rest and the reports', async () => {
    const old: Task[] = [];
    for (const status of ['succeeded', 'failed', 'cancelled'] as const)
      old.push(await taskIn(status), await taskIn(status));
    const recent = [await taskIn('succeeded'), await taskIn('failed'), await taskIn('cancelled')];
    // Live tasks as old as the deleted ones: no finished_at, never deleted, whatever their age.
    const live: Task[] = [];
    for (const status of ['new', 'scheduled', 'queued', 'running', 'retrying'] as const)
      live.push(await taskIn(status));
    await age(
      [...old, ...live].map((x) => x.id),
      31 * DAY_MS,
    );
    // Just inside the retention: kept.
    await age([recent[0]!.id], 29 * DAY_MS);
    await relayed();
    const reports = new TaskReports(t.db);
    const report = await reports.create(old[0]!.id, 'alice', 'this failed oddly');
    const oldIds = old.map((x) => x.id);
    expect(await eventCount(oldIds)).toBeGreaterThanOrEqual(oldIds.length * 2);

    const round = await retention().runOnce();

    expect(round).toMatchObject({ ran: true, tasks: old.length, batches: 1, largestBatch: old.length });
    expect(round.events).toBeGreaterThanOrEqual(oldIds.length * 2);
    expect(await present(oldIds)).toEqual([]);
    expect(await eventCount(oldIds)).toBe(0);
    const keptIds = [...recent, ...live].map((x) => x.id);
    expect((await present(keptIds)).sort()).toEqual(keptIds.sort());
    expect(await eventCount(keptIds)).toBeGreaterThanOrEqual(keptIds.length);
    // The report of a deleted task stays, still naming it.
    expect((await reports.list(10)).items).toEqual([expect.objectContaining({ id: report.id, taskId: old[0]!.id })]);
    // Nothing more to do: a second round deletes nothing.
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 0, events: 0, batches: 1 });
  });

  it('keeps a finished task while an outbox row of it is unsent, and deletes it once sent', async () => {
    const task = await taskIn('running');
    const cancelled = await sm.cancel(task.id, 'owner:alice'); // a running task's cancel signal goes through the outbox
    expect(cancelled.applied).toBe(true);
    await t.db.query(`DELETE FROM outbox WHERE exchange <> 'control'`);
    await age([task.id], 31 * DAY_MS);
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 0 });
    expect(await present([task.id])).toEqual([task.id]);
    await relayed();
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 1 });
    expect(await present([task.id])).toEqual([]);
  });

  it('keeps finished tasks named anywhere in an unsent bundle, not only its first', async () => {
    await relayed();
    const ids: string[] = (
      await t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
         SELECT 'alice', 'demo.sleep', '{}', 'cancelled', 1, 1000, now() - interval '31 days'
           FROM generate_series(1, 3) g RETURNING id`,
      )
    ).map((r: { id: string }) => r.id);
    // A bundle's row: its correlation id is the first task's, the others are only in its body.
    await t.db.query(
      `INSERT INTO outbox (exchange, routing_key, correlation_id, body)
       VALUES ('work', 'demo.sleep', $1, jsonb_build_object('v', 2, 'type', 'demo.sleep', 'taskIds', to_jsonb($2::text[])))`,
      [ids[0], ids],
    );
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 0 });
    expect((await present(ids)).sort()).toEqual([...ids].sort());
    await relayed();
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 3 });
  });

  it('keeps a finished task while its completion webhook is still being delivered, and deletes it once delivered', async () => {
    const task = await taskIn('succeeded');
    await relayed();
    await t.db.query(
      `INSERT INTO webhook_deliveries (task_id, owner, url, event_type, task) VALUES ($1, 'alice', 'http://x.test/', 'task.succeeded', '{}')`,
      [task.id],
    );
    await age([task.id], 31 * DAY_MS);
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 0 });
    expect(await present([task.id])).toEqual([task.id]);
    await t.db.query(`UPDATE webhook_deliveries SET status = 'succeeded', finished_at = now() WHERE task_id = $1`, [
      task.id,
    ]);
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 1 });
    expect(await present([task.id])).toEqual([]);
  });

  it('ends a round past tasks it must keep, even when more than a batch of them finished in one statement', async () => {
    // 30 tasks finished at the same instant (a batch cancel), 10 of them with a message unsent.
    const ids: string[] = (
      await t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
         SELECT 'alice', 'demo.sleep', '{}', 'cancelled', 1, 1000, now() - interval '31 days'
           FROM generate_series(1, 30) g RETURNING id`,
      )
    ).map((r: { id: string }) => r.id);
    // The last 10 in the round's order (finished_at, then id): batches of 4 before them are whole,
    // whatever the random ids (interleaved, a batch of 4 could hold one kept task every time).
    const held = [...ids].sort().slice(20);
    await t.db.query(
      `INSERT INTO outbox (exchange, routing_key, correlation_id, body) SELECT 'control', 'cancel', id::text, '{}'
         FROM unnest($1::uuid[]) id`,
      [held],
    );
    const round = await retention({ TASK_RETENTION_BATCH_SIZE: 4 }).runOnce();
    expect(round).toMatchObject({ ran: true, tasks: 20, batches: 8, largestBatch: 4 });
    expect((await present(ids)).sort()).toEqual([...held].sort());
  });

  it('deletes in batches of at most TASK_RETENTION_BATCH_SIZE, oldest first, each committed by itself', async () => {
    // 50 finished tasks, finished a second apart, all past the retention.
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, created_at, finished_at)
       SELECT 'alice', 'demo.sleep', '{}', 'succeeded', 1, 1000, now() - interval '40 days', now() - interval '31 days' - g * interval '1 second'
         FROM generate_series(1, 50) g`,
    );
    const seen: number[] = [];
    const job = retention({ TASK_RETENTION_BATCH_SIZE: 7, TASK_RETENTION_PAUSE_MS: 50 });
    const counting = job.runOnce();
    // Another session sees the count fall batch by batch while the round runs: every batch commits alone.
    const count = async () => (await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n as number;
    let n = 50;
    while (n > 0) {
      n = await count();
      if (seen.at(-1) !== n) seen.push(n);
      if (n > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const round = await counting;
    expect(round).toMatchObject({ ran: true, tasks: 50, batches: 8, largestBatch: 7 });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((x) => x === 50 || (50 - x) % 7 === 0 || x === 0)).toBe(true);
  });

  it('stops between two batches at once on shutdown, without waiting out the pause', async () => {
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
       SELECT 'alice', 'demo.sleep', '{}', 'succeeded', 1, 1000, now() - interval '31 days' - g * interval '1 second'
         FROM generate_series(1, 20) g`,
    );
    const job = retention({ TASK_RETENTION_BATCH_SIZE: 5, TASK_RETENTION_PAUSE_MS: 60_000 });
    const round = job.runOnce();
    await waitFor(
      'the first batch committed',
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n === 15,
      10_000,
      20,
    );
    const stopAt = Date.now();
    await job.stop();
    expect(Date.now() - stopAt).toBeLessThan(5_000);
    expect(await round).toMatchObject({ ran: true, tasks: 5, batches: 1 });
    // The lock went with the round: the next one (of any replica) goes on from there.
    expect(await retention().runOnce()).toMatchObject({ ran: true, tasks: 15 });
  });

  it('runs one round at a time across replicas: a replica that does not get the lock skips the round', async () => {
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
       SELECT 'alice', 'demo.sleep', '{}', 'failed', 1, 1000, now() - interval '31 days' - g * interval '1 second'
         FROM generate_series(1, 40) g`,
    );
    // Two replicas at once, each round long enough (10 batches, 100 ms apart) for the other to try.
    const a = retention({ TASK_RETENTION_BATCH_SIZE: 4, TASK_RETENTION_PAUSE_MS: 100 });
    const b = retention({ TASK_RETENTION_BATCH_SIZE: 4, TASK_RETENTION_PAUSE_MS: 100 });
    const rounds = await Promise.all([a.runOnce(), b.runOnce()]);
    expect(rounds.map((r) => r.ran).sort()).toEqual([false, true]);
    expect(rounds.find((r) => r.ran)).toMatchObject({ tasks: 40 });
    expect(rounds.find((r) => !r.ran)).toMatchObject({ tasks: 0, batches: 0 });

    // The lock held elsewhere (a replica mid-round): skipped, nothing deleted.
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
       VALUES ('alice', 'demo.sleep', '{}', 'failed', 1, 1000, now() - interval '31 days')`,
    );
    const holder = t.db.createQueryRunner();
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtext($1), hashtext('task-retention'))`, [
        t.config.DATABASE_SCHEMA,
      ]);
      expect(await a.runOnce()).toMatchObject({ ran: false, tasks: 0 });
      // The lock is the schema's: a deployment in another schema of the same server runs its own round meanwhile.
      const other = await createTestDatabase({ poolSize: 2 });
      try {
        expect(await retention({}, other).runOnce()).toMatchObject({ ran: true });
      } finally {
        await other.drop();
      }
      expect(await present((await t.db.query(`SELECT id FROM tasks`)).map((r: { id: string }) => r.id))).toHaveLength(
        1,
      );
    } finally {
      await holder.query(`SELECT pg_advisory_unlock_all()`);
      await holder.release();
    }
    expect(await a.runOnce()).toMatchObject({ ran: true, tasks: 1 });
  });

  it('frees the idempotency key of a deleted task: a resubmit with it creates a new task', async () => {
    const first = await taskIn('succeeded', 'nightly-report');
    const again = await sm.create(
      {
        owner: 'alice',
        type: 'demo.sleep',
        payload: { ms: 1 },
        maxAttempts: 3,
        timeoutMs: 60_000,
        idempotencyKey: 'nightly-report',
      },
      { start: true, actor: 'owner:alice' },
    );
    expect([again.created, again.task.id]).toEqual([false, first.id]);
    await relayed();
    await age([first.id], 31 * DAY_MS);
    expect(await retention().runOnce()).toMatchObject({ tasks: 1 });
    const fresh = await sm.create(
      {
        owner: 'alice',
        type: 'demo.sleep',
        payload: { ms: 1 },
        maxAttempts: 3,
        timeoutMs: 60_000,
        idempotencyKey: 'nightly-report',
      },
      { start: true, actor: 'owner:alice' },
    );
    expect(fresh.created).toBe(true);
    expect(fresh.task.id).not.toBe(first.id);
  });

  it('reads each batch as a range of the partial index on finished_at, not a scan of the table', async () => {
    // 20,000 finished and 5,000 live tasks, statistics gathered: the planner's real choice.
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
       SELECT 'alice', 'demo.sleep', '{}', 'succeeded', 1, 1000, now() - g * interval '1 minute' FROM generate_series(1, 20000) g`,
    );
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms)
       SELECT 'alice', 'demo.sleep', '{}', 'queued', 1, 1000 FROM generate_series(1, 5000) g`,
    );
    await t.db.query(`ANALYZE tasks`);
    const runner = t.db.createQueryRunner();
    await runner.connect();
    try {
      await runner.query(`BEGIN`);
      const [{ 'QUERY PLAN': plan }] = await runner.query(`EXPLAIN (FORMAT JSON) ${DELETE_BATCH_SQL}`, [
        new Date(Date.now() - 7 * DAY_MS).toISOString(),
        '-infinity',
        '00000000-0000-0000-0000-000000000000',
        1000,
      ]);
      await runner.query(`ROLLBACK`);
      const nodes: string[] = [];
      const walk = (node: Record<string, any>) => {
        nodes.push(`${node['Node Type']} ${node['Index Name'] ?? node['Relation Name'] ?? ''}`.trim());
        for (const child of node['Plans'] ?? []) walk(child);
      };
      walk(plan[0]['Plan']);
      // Neither table is read whole: the deletes find their rows by key.
      expect(nodes.filter((n) => /^Seq Scan (tasks|task_events)$/.test(n))).toEqual([]);
      // The range is read in index order and stops at the LIMIT: no sort of every row past the cutoff.
      expect(nodes.join(' > ')).toContain('Limit > LockRows > Index Scan tasks_finished_at');
    } finally {
      await runner.release();
    }
  });
});
