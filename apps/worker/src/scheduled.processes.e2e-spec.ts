import { randomUUID } from 'node:crypto';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, type NewTaskRow, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { waitFor } from '@tasksys/testing';
import { WorkerFleet } from '../test/worker-fleet';

const TASKS = 100;

/**
 * Delayed start against real worker processes: tasks due 1.5-3 s after submit start within 1 s of
 * their due time (lateness = started_at - run_at, both by the database's clock, p99 over 100
 * tasks), also with 100,000 tasks scheduled for next month waiting in the same table, and after
 * the only worker was killed (-9) and started again while they waited. The relay polls every 5 s
 * here: on time means the promoter woke it.
 */
describe('delayed start (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    messaging = testMessagingConfig({ RETRY_TIERS_MS: '500,2000' });
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      { WORKER_SHUTDOWN_GRACE_MS: '0', OUTBOX_POLL_MS: '5000', LOG_LEVEL: 'info' },
      `${messaging.TASKS_NAMESPACE}-s`,
    );
  }, 60_000);

  afterEach(async () => {
    await fleet.stopAll();
    await t.db.query(`DELETE FROM workers`);
  });

  afterAll(async () => {
    await fleet?.stopAll();
    if (messaging) await deleteTopology(buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) }));
    await t?.drop();
  }, 60_000);

  /** `n` demo.sleep tasks due `minMs`-`maxMs` from now, spread evenly, in one statement. */
  async function schedule(n: number, minMs: number, maxMs: number): Promise<string[]> {
    const rows: NewTaskRow[] = Array.from({ length: n }, (_, i) => ({
      id: randomUUID(),
      owner: 'test',
      type: 'demo.sleep',
      payload: { ms: 10 },
      maxAttempts: 3,
      timeoutMs: 60_000,
      start: true,
      actor: 'owner:test',
      delayMs: Math.round(minMs + ((maxMs - minMs) * i) / Math.max(1, n - 1)),
    }));
    const created = await sm.createMany(rows);
    expect([...created.values()].every((x) => 'status' in x && x.status === 'scheduled')).toBe(true);
    return rows.map((r) => r.id);
  }

  /** Waits until every task succeeded; returns each one's lateness in ms (started_at - run_at), sorted. */
  async function lateness(ids: string[]): Promise<number[]> {
    await waitFor(
      `${ids.length} scheduled tasks succeeded`,
      async () => {
        const [{ done }] = await t.db.query(
          `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done FROM tasks WHERE id = ANY($1::uuid[])`,
          [ids],
        );
        return done === ids.length;
      },
      60_000,
      200,
    );
    const rows: { late: number; attempt: number }[] = await t.db.query(
      `SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 AS late, attempt FROM tasks WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows.every((r) => r.attempt === 1)).toBe(true); // each ran once
    return rows.map((r) => r.late).sort((a, b) => a - b);
  }

  const percentile = (sorted: number[], p: number) => sorted[Math.ceil(p * sorted.length) - 1];
  function report(label: string, late: number[]): void {
    const fmt = (ms: number) => `${Math.round(ms)} ms`;
    console.log(
      `${label}: lateness over ${late.length} tasks: min ${fmt(late[0])}, p50 ${fmt(percentile(late, 0.5))}, ` +
        `p99 ${fmt(percentile(late, 0.99))}, max ${fmt(late.at(-1)!)}`,
    );
  }

  it('starts tasks due in 1.5-3 s within 1 s of their due time (p99), never early, each once', async () => {
    await fleet.start();
    await fleet.start();
    const late = await lateness(await schedule(TASKS, 1500, 3000));
    report('2 workers, nothing else waiting', late);
    expect(late[0]).toBeGreaterThanOrEqual(0);
    expect(percentile(late, 0.99)).toBeLessThan(1000);
  }, 120_000);

  it('starts them as punctually with 100,000 tasks scheduled for next month waiting beside them', async () => {
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, run_at)
       SELECT 'bulk', 'demo.sleep', '{"ms":1}', 'scheduled', 1, 60000, now() + interval '30 days' + g * interval '1 second'
         FROM generate_series(1, 100000) g`,
    );
    try {
      await fleet.start();
      await fleet.start();
      const late = await lateness(await schedule(TASKS, 1500, 3000));
      report('2 workers, 100,000 scheduled for later', late);
      expect(late[0]).toBeGreaterThanOrEqual(0);
      expect(percentile(late, 0.99)).toBeLessThan(1000);
      const [{ n }] = await t.db.query(
        `SELECT count(*)::int AS n FROM tasks WHERE owner = 'bulk' AND status = 'scheduled'`,
      );
      expect(n).toBe(100_000);
    } finally {
      await t.db.query(`DELETE FROM tasks WHERE owner = 'bulk'`);
    }
  }, 180_000);

  it('starts them on time after the only worker was killed (-9) and started again while they waited', async () => {
    const worker = await fleet.start();
    const ids = await schedule(TASKS, 6000, 8000);
    await worker.kill('SIGKILL');
    const [{ scheduled }] = await t.db.query(
      `SELECT count(*)::int AS scheduled FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'scheduled'`,
      [ids],
    );
    expect(scheduled).toBe(TASKS);
    await worker.start();
    const [{ ready }] = await t.db.query(
      `SELECT count(*)::int AS ready FROM tasks WHERE id = ANY($1::uuid[]) AND run_at > now()`,
      [ids],
    );
    expect(ready).toBe(TASKS); // the worker was back before the first was due
    const late = await lateness(ids);
    report('1 worker, killed and restarted while they waited', late);
    expect(percentile(late, 0.99)).toBeLessThan(1000);
  }, 120_000);
});
