/**
 * Cron schedules across real processes (`npx nx run-many -t build -p api worker` first): two api
 * processes and a worker, each running a firer, over one schema and broker namespace of their own.
 * Per-second schedules: every fire time gets exactly one task, through kill -9 and restarts of the
 * apis, none missed while any firer runs; with every firer down, the missed fire times are fired
 * once on recovery (the documented policy) and counted.
 */
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { type AppProcess, ProcessFleet, waitFor } from '@tasksys/testing';

const ADMIN_KEY = 'schedules-admin-key-0123456789abcdef';

interface Run {
  schedule_id: string;
  at: number;
  late: number;
}

describe('cron schedules across api and worker processes (real PostgreSQL and RabbitMQ)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let apis: ProcessFleet;
  let workers: ProcessFleet;

  beforeAll(async () => {
    t = await createTestDatabase();
    messaging = testMessagingConfig();
    const common = {
      DATABASE_URL: t.config.DATABASE_URL,
      DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
      RABBITMQ_URL: messaging.RABBITMQ_URL,
      TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
      RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
      LOG_LEVEL: 'info',
    };
    apis = new ProcessFleet({
      app: 'api',
      names: `${messaging.TASKS_NAMESPACE}-sched-api`,
      env: { ...common, ADMIN_API_KEY: ADMIN_KEY, RATE_LIMIT_PER_MINUTE: '100000' },
    });
    workers = new ProcessFleet({
      app: 'worker',
      names: `${messaging.TASKS_NAMESPACE}-sched-w`,
      env: { ...common, WORKER_SHUTDOWN_GRACE_MS: '0', WORKER_TASK_TYPES: 'demo.sleep' },
    });
  }, 60_000);

  afterEach(async () => {
    await Promise.all([apis.stopAll(), workers.stopAll()]);
    await t.db.query(
      `DELETE FROM schedules; DELETE FROM outbox; DELETE FROM task_events; DELETE FROM tasks; DELETE FROM workers`,
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all([apis?.stopAll(), workers?.stopAll()]);
    if (messaging) await deleteTopology(buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) }));
    await t?.drop();
  }, 60_000);

  /** JSON bodies of several shapes, read by the assertions. */
  async function call(
    api: AppProcess,
    method: string,
    path: string,
    body?: unknown,
    key = ADMIN_KEY,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  async function everySecond(api: AppProcess, n: number): Promise<string[]> {
    const key = (await call(api, 'POST', '/v1/admin/api-keys', { owner: 'cron', role: 'user' })).body.key as string;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await call(
        api,
        'POST',
        '/v1/schedules',
        { name: `every-second-${i}`, cron: '* * * * * *', task: { type: 'demo.sleep', payload: { ms: 1 } } },
        key,
      );
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    return ids;
  }

  const runs = async (): Promise<Run[]> =>
    (
      await t.db.query(
        `SELECT schedule_id, extract(epoch FROM scheduled_for)::float8 * 1000 AS at,
                extract(epoch FROM created_at - scheduled_for)::float8 * 1000 AS late
           FROM tasks ORDER BY scheduled_for`,
      )
    ).map((r: Run) => ({ ...r, at: Number(r.at), late: Number(r.late) }));

  const firesAfter = async (instant: number, n: number, ids: string[]) =>
    waitFor(
      `${n} fires of each schedule after ${new Date(instant).toISOString()}`,
      async () => {
        const all = await runs();
        return ids.every((id) => all.filter((r) => r.schedule_id === id && r.at > instant).length >= n);
      },
      60_000,
      200,
    );

  const slotsOf = (all: Run[], id: string) => all.filter((r) => r.schedule_id === id).map((r) => r.at);
  const percentile = (sorted: number[], p: number) => sorted[Math.ceil(p * sorted.length) - 1];

  it('two apis and a worker: one task per fire time through kill -9 and restart of each api, none missed, each run once', async () => {
    const [api1, api2] = await Promise.all([apis.start(), apis.start()]);
    await workers.start();
    const ids = await everySecond(api1, 3);
    await firesAfter(0, 3, ids);

    // Killed mid-run: with three firers firing every second, a fire (a transaction) is often in flight.
    await api1.kill('SIGKILL');
    await firesAfter(Date.now(), 2, ids);
    await api1.start();
    await firesAfter(Date.now(), 2, ids);
    await api2.kill('SIGKILL');
    await api2.start();
    await firesAfter(Date.now(), 3, ids);
    await call(api1, 'DELETE', `/v1/schedules/${ids[0]}`);
    await call(api2, 'DELETE', `/v1/schedules/${ids[1]}`);
    await call(api2, 'DELETE', `/v1/schedules/${ids[2]}`);

    const all = await runs();
    for (const id of ids) {
      const slots = slotsOf(all, id);
      expect(new Set(slots).size).toBe(slots.length); // one task per fire time
      // Every second from the first fire to the last: none missed.
      expect(slots.at(-1)! - slots[0]).toBe((slots.length - 1) * 1000);
      const [row] = await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE schedule_id = $1`, [id]);
      expect(row.n).toBe(slots.length);
    }
    // Each run once, through the ordinary path: queued, published, claimed once, succeeded.
    await waitFor(
      'every fired task succeeded',
      async () => {
        const [r] = await t.db.query(`SELECT count(*) FILTER (WHERE status <> 'succeeded')::int AS left FROM tasks`);
        return r.left === 0;
      },
      60_000,
      200,
    );
    const [shape] = await t.db.query(
      `SELECT count(*)::int AS tasks, count(*) FILTER (WHERE attempt = 1)::int AS once FROM tasks`,
    );
    expect(shape.once).toBe(shape.tasks);
    const late = all.map((r) => r.late).sort((a, b) => a - b);
    console.log(
      `${all.length} fires of 3 per-second schedules, 2 apis + 1 worker, 2 kill -9: lateness (created_at - fire time) ` +
        `p50 ${Math.round(percentile(late, 0.5))} ms, p99 ${Math.round(percentile(late, 0.99))} ms, max ${Math.round(late.at(-1)!)} ms`,
    );
    expect(late[0]).toBeGreaterThanOrEqual(0);
    expect(percentile(late, 0.5)).toBeLessThan(1000);
  }, 240_000);

  it('a worker alone fires too, and wakes its own polling relay: fired tasks start within a second of their time', async () => {
    // No api: the worker's relay polls every 5 s, so on time means the fire woke it.
    await workers.start({ OUTBOX_POLL_MS: '5000' });
    const [row] = await t.db.query(
      `INSERT INTO schedules (owner, name, cron, task_type, task_payload, task_max_attempts, task_timeout_ms, next_run_at)
       VALUES ('cron', 'worker-only', '* * * * * *', 'demo.sleep', '{"ms":1}', 3, 60000, date_trunc('second', now()) + interval '2 second')
       RETURNING id`,
    );
    await firesAfter(0, 5, [row.id]);
    await waitFor(
      'five fired tasks started',
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE started_at IS NOT NULL`))[0].n >= 5,
      30_000,
      200,
    );
    const started: { late: number }[] = await t.db.query(
      `SELECT extract(epoch FROM started_at - scheduled_for)::float8 * 1000 AS late FROM tasks
        WHERE started_at IS NOT NULL ORDER BY scheduled_for LIMIT 5`,
    );
    const late = started.map((r) => Number(r.late)).sort((a, b) => a - b);
    console.log(`worker only, relay polling every 5 s: fire time to start ${late.map(Math.round).join(', ')} ms`);
    expect(late.at(-1)!).toBeLessThan(1000);
  }, 120_000);

  it('kill -9 in the middle of a fire: nothing of it committed, the restarted api fires that time once', async () => {
    // Each scheduled insert sleeps 1.5 s in PostgreSQL, so the fire's transaction is surely open when the api dies.
    await t.db.query(`CREATE FUNCTION slow_fire() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$`);
    await t.db.query(`CREATE TRIGGER slow_fire BEFORE INSERT ON tasks FOR EACH ROW
                        WHEN (NEW.schedule_id IS NOT NULL) EXECUTE FUNCTION slow_fire()`);
    try {
      // A long grace: the restart takes seconds, and the slot in flight must be caught up, not collapsed.
      const api = await apis.start({ SCHEDULE_MISFIRE_GRACE_MS: '120000' });
      const key = (await call(api, 'POST', '/v1/admin/api-keys', { owner: 'cron', role: 'user' })).body.key as string;
      const created = await call(
        api,
        'POST',
        '/v1/schedules',
        { name: 'every-3s', cron: '*/3 * * * * *', task: { type: 'demo.sleep', payload: { ms: 1 } } },
        key,
      );
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      await firesAfter(0, 1, [id]);
      const [inFlight] = await waitFor(
        'a fire sleeping inside its transaction',
        async () => {
          // Matched on the statement's start: pg_stat_activity keeps only its first 1 KiB.
          const rows: { pid: number }[] = await t.db.query(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'
                AND query LIKE 'WITH input AS%jsonb_to_recordset%' AND pid <> pg_backend_pid()`,
          );
          return rows.length > 0 ? rows : null;
        },
        30_000,
        20,
      );
      await api.kill('SIGKILL');
      // The row lock hides the fire's own update: next_run_at is still the fire time in flight.
      const [{ slot }] = await t.db.query(`SELECT next_run_at AS slot FROM schedules WHERE id = $1`, [id]);
      await waitFor(
        'the killed fire’s session to end',
        async () => (await t.db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [inFlight.pid])).length === 0,
        30_000,
        50,
      );
      // Rolled back whole: no task for that time, the schedule not advanced.
      expect(
        await t.db.query(`SELECT id FROM tasks WHERE schedule_id = $1 AND scheduled_for = $2`, [id, slot]),
      ).toEqual([]);
      expect((await t.db.query(`SELECT next_run_at FROM schedules WHERE id = $1`, [id]))[0].next_run_at).toEqual(slot);
      await t.db.query(`DROP TRIGGER slow_fire ON tasks`);

      await api.start(); // the same settings as before (the long grace)
      await firesAfter(Date.now(), 1, [id]);
      const slots = slotsOf(await runs(), id);
      expect(slots.filter((at) => at === slot.getTime())).toHaveLength(1);
      expect(slots.at(-1)! - slots[0]).toBe((slots.length - 1) * 3000); // none missed, none twice
      const [events] = await t.db.query(
        `SELECT count(*)::int AS n FROM task_events e JOIN tasks t ON t.id = e.task_id
          WHERE t.schedule_id = $1 AND t.scheduled_for = $2 AND e.from_status IS NULL`,
        [id, slot],
      );
      expect(events.n).toBe(1);
      const view = (await call(api, 'GET', `/v1/schedules/${id}`, undefined, key)).body;
      expect([view.firedCount, view.missedCount]).toEqual([slots.length, 0]);
    } finally {
      await t.db.query(`DROP TRIGGER IF EXISTS slow_fire ON tasks; DROP FUNCTION IF EXISTS slow_fire()`);
    }
  }, 180_000);

  it('every firer down: the missed fire times are fired once on recovery, for the latest of them, and counted', async () => {
    const api = await apis.start({ SCHEDULE_MISFIRE_GRACE_MS: '1000' });
    const [id] = await everySecond(api, 1);
    await firesAfter(0, 2, [id]);
    await api.kill('SIGKILL');
    const [{ down }] = await t.db.query(`SELECT extract(epoch FROM now())::float8 * 1000 AS down`);
    // Down for a while on purpose: this is the outage whose fire times are missed.
    await new Promise((r) => setTimeout(r, 4000));
    await api.start();
    const back = Date.now();
    await firesAfter(back, 2, [id]);

    const slots = slotsOf(await runs(), id);
    const gaps = slots.slice(1).map((at, i) => at - slots[i]);
    // One gap: the outage, bridged by ONE recovery fire; every other step a second.
    const big = gaps.filter((g) => g !== 1000);
    expect(big).toHaveLength(1);
    const i = gaps.findIndex((g) => g !== 1000);
    const lastBefore = slots[i];
    const recovered = slots[i + 1];
    expect(lastBefore).toBeLessThanOrEqual(Number(down));
    expect(recovered).toBeGreaterThan(Number(down) + 3000);
    const view = (await call(api, 'GET', `/v1/schedules/${id}`)).body;
    expect(view.missedCount).toBe((recovered - lastBefore) / 1000 - 1);
    expect(view.firedCount).toBe(slots.length);
    console.log(
      `outage of ${Math.round((back - Number(down)) / 1000)} s: ${view.missedCount} fire times missed, one recovery fire for ${new Date(recovered).toISOString()}`,
    );
  }, 180_000);
});
