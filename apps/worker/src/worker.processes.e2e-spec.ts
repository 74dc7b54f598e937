import { type Channel, type ChannelModel, connect } from 'amqplib';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { waitFor } from '@tasksys/testing';
import { TaskProbes } from '../test/task-probes';
import { WorkerFleet } from '../test/worker-fleet';

/**
 * The worker as real processes against real PostgreSQL and RabbitMQ: runs, retries, dead
 * letters, kill -9, SIGTERM, cancel and garbage. File name contains "processes": CI runs it
 * alone, since it loads the machine.
 */
describe('worker processes', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let amqp: ChannelModel;
  let ch: Channel;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((t) => t.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    probes = new TaskProbes(t.db, sm);
    messaging = { ...testMessagingConfig(), RETRY_TIERS_MS: [200, 1000, 5000] };
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_CONCURRENCY: '50',
        WORKER_LEASE_MS: '3000',
        WORKER_SHUTDOWN_GRACE_MS: '3000',
        SQL_TARGET_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
        DEMO_ALLOW_CRASH: '1',
        LOG_LEVEL: 'info',
      },
    );
    amqp = await connect(messaging.RABBITMQ_URL);
    ch = await amqp.createChannel();
    await Promise.all([fleet.start(), fleet.start(), fleet.start()]);
  }, 90_000);

  afterAll(async () => {
    await fleet?.stopAll();
    await amqp?.close().catch(() => undefined);
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  let probes: TaskProbes;
  const submit = (n: number, payload: Record<string, unknown>, type = 'demo.sleep', maxAttempts = 3) =>
    probes.submit(n, payload, { type, maxAttempts });
  const statusCounts = (ids: string[]) => probes.statusCounts(ids);
  const allIn = (ids: string[], status: string, timeoutMs: number) => probes.allIn(ids, status, timeoutMs);

  /** Terminal events per task: exactly one each is the "committed once" invariant. */
  async function terminalEventsPerTask(ids: string[]): Promise<number[]> {
    const rows: { n: number }[] = await t.db.query(
      `SELECT count(e.id)::int AS n FROM unnest($1::uuid[]) AS x(id)
         LEFT JOIN task_events e ON e.task_id = x.id AND e.to_status IN ('succeeded','failed','cancelled')
        GROUP BY x.id`,
      [ids],
    );
    return rows.map((r) => r.n);
  }

  async function drainDeadLetters(): Promise<{ body: Buffer; headers: Record<string, unknown> }[]> {
    const out: { body: Buffer; headers: Record<string, unknown> }[] = [];
    for (;;) {
      const m = await ch.get(topology().queues.dead, { noAck: true });
      if (!m) return out;
      out.push({ body: m.content, headers: m.properties.headers ?? {} });
    }
  }

  /** Dead letters accumulate across polls (each `get` removes one from the queue). */
  async function collectDeadLetters(n: number) {
    const got: { body: Buffer; headers: Record<string, unknown> }[] = [];
    await waitFor(`${n} dead letters`, async () => {
      got.push(...(await drainDeadLetters()));
      return got.length >= n;
    });
    return got;
  }

  it('runs 1,000 tasks over 3 workers: all succeed, one succeeded event each', async () => {
    const ids = await submit(1000, { ms: 20 });
    await allIn(ids, 'succeeded', 120_000);
    expect(await terminalEventsPerTask(ids)).toEqual(ids.map(() => 1));
    const ran: { n: number }[] = await t.db.query(
      `SELECT count(DISTINCT actor)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running'`,
      [ids],
    );
    expect(ran[0].n).toBe(3);
  }, 180_000);

  it('retries failTimes: 2 through the tiers and succeeds on attempt 3; fatal and exhausted end failed and dead-lettered', async () => {
    await drainDeadLetters();
    const [retried] = await submit(1, { ms: 1, failTimes: 2 }, 'demo.sleep', 3);
    const [fatal] = await submit(1, { ms: 1, fatal: true });
    const [exhausted] = await submit(1, { ms: 1, failTimes: 5 }, 'demo.sleep', 2);
    await allIn([retried], 'succeeded', 30_000);
    await allIn([fatal, exhausted], 'failed', 30_000);

    const [row] = await t.db.query(`SELECT attempt, result FROM tasks WHERE id = $1`, [retried]);
    expect(row).toMatchObject({ attempt: 3, result: { sleptMs: 1, attempt: 3 } });
    const events: { to_status: string; at: Date }[] = await t.db.query(
      `SELECT to_status, at FROM task_events WHERE task_id = $1 ORDER BY id`,
      [retried],
    );
    expect(events.map((e) => e.to_status)).toEqual([
      'queued',
      'running',
      'retrying',
      'running',
      'retrying',
      'running',
      'succeeded',
    ]);
    // Each retry waited at least its tier's delay (the shortest tier is 200 ms).
    for (const i of [2, 4]) expect(events[i + 1].at.getTime() - events[i].at.getTime()).toBeGreaterThanOrEqual(190);

    const dead = await collectDeadLetters(2);
    const byTask = Object.fromEntries(dead.map((d) => [JSON.parse(d.body.toString()).taskId, d.headers]));
    expect(byTask[fatal]).toMatchObject({ 'x-reason-code': 'DEMO.FATAL' });
    expect(byTask[exhausted]).toMatchObject({ 'x-reason-code': 'DEMO.FAIL_TIMES' });
  }, 60_000);

  it('survives kill -9 of a worker with 200 tasks running: all finish on the others, none twice', async () => {
    const ids = await submit(200, { ms: 2500, steps: 5 });
    let counts: Record<string, number> = {};
    await waitFor(
      'tasks running',
      async () => {
        counts = await statusCounts(ids);
        return (counts['running'] ?? 0) >= 100;
      },
      30_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; counts ${JSON.stringify(counts)}`);
    });
    const victim = fleet.alive()[0];
    victim.child.kill('SIGKILL');
    await victim.exited;
    await allIn(ids, 'succeeded', 90_000);
    expect(await terminalEventsPerTask(ids)).toEqual(ids.map(() => 1));
    await fleet.start(); // back to three
  }, 150_000);

  it('hands in-flight tasks over on SIGTERM and exits 0: nothing lost', async () => {
    const ids = await submit(60, { ms: 8000, steps: 8 });
    await waitFor('tasks running', async () => ((await statusCounts(ids))['running'] ?? 0) >= 30, 30_000);
    const leaving = fleet.alive()[0];
    leaving.child.kill('SIGTERM');
    const exit = await leaving.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    await allIn(ids, 'succeeded', 90_000);
    expect(await terminalEventsPerTask(ids)).toEqual(ids.map(() => 1));
    const handedBack: { n: number }[] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND from_status = 'running' AND to_status = 'queued'`,
      [ids],
    );
    // The grace (3 s) is shorter than the tasks (8 s), so the leaving worker's runs were released.
    expect(handedBack[0].n).toBeGreaterThan(0);
    await fleet.start();
  }, 150_000);

  it('cancels a running sql.query within 2 s and the backend query is gone', async () => {
    const [id] = await submit(1, { sql: 'SELECT pg_sleep(60)' }, 'sql.query');
    await allIn([id], 'running', 20_000);
    const backend = () =>
      t.db.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`, [
        `tasksys:${id}`,
      ]);
    await waitFor('query running in PostgreSQL', async () => (await backend()).length === 1);
    const started = Date.now();
    const r = await sm.cancel(id, 'owner:test');
    expect(r.applied).toBe(true);
    await waitFor('backend query gone', async () => (await backend()).length === 0, 2000, 50);
    expect(Date.now() - started).toBeLessThan(2000);
    const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [id]);
    expect(row.status).toBe('cancelled');
  }, 60_000);

  it('dead-letters garbage and a message for an unknown task with a reason, and keeps serving', async () => {
    await drainDeadLetters();
    const work = topology().workQueue('demo.sleep');
    ch.sendToQueue(work, Buffer.from([0xde, 0xad, 0xbe, 0xef]), { persistent: true });
    ch.sendToQueue(
      work,
      Buffer.from(JSON.stringify({ v: 1, taskId: '00000000-0000-4000-8000-000000000001', type: 'demo.sleep' })),
      {
        persistent: true,
      },
    );
    const dead = await collectDeadLetters(2);
    expect(dead.map((d) => d.headers['x-reason-code']).sort()).toEqual(['MESSAGE.NOT_JSON', 'TASK.NOT_FOUND']);
    const ids = await submit(1, { ms: 1 });
    await allIn(ids, 'succeeded', 20_000);
  }, 60_000);

  it('fences a zombie: a run that lost its lease cannot record its outcome', async () => {
    const [id] = await submit(1, { ms: 6000 });
    await allIn([id], 'running', 20_000);
    const [{ lease_owner: owner }] = await t.db.query(`SELECT lease_owner FROM tasks WHERE id = $1`, [id]);
    const zombie = fleet.alive().find((w) => w.name === owner)!;
    zombie.child.kill('SIGSTOP'); // frozen: no heartbeats, its lease runs out
    try {
      await waitFor(
        'lease expired',
        async () =>
          (await t.db.query(`SELECT 1 FROM tasks WHERE id = $1 AND lease_expires_at < now()`, [id])).length === 1,
        10_000,
      );
      // A duplicate delivery (as after a redelivery) lets another worker take over.
      ch.publish(
        topology().exchanges.work,
        'demo.sleep',
        Buffer.from(JSON.stringify({ v: 1, taskId: id, type: 'demo.sleep' })),
        { persistent: true },
      );
      await waitFor(
        'taken over',
        async () => {
          const [row] = await t.db.query(`SELECT lease_owner, attempt FROM tasks WHERE id = $1`, [id]);
          return row.lease_owner && row.lease_owner !== owner && row.attempt === 2;
        },
        20_000,
      );
    } finally {
      zombie.child.kill('SIGCONT');
    }
    await allIn([id], 'succeeded', 30_000);
    const [row] = await t.db.query(`SELECT attempt FROM tasks WHERE id = $1`, [id]);
    expect(row.attempt).toBe(2);
    expect(await terminalEventsPerTask([id])).toEqual([1]);
    const [ev] = await t.db.query(`SELECT actor FROM task_events WHERE task_id = $1 AND to_status = 'succeeded'`, [id]);
    expect(ev.actor).not.toBe(owner);
  }, 90_000);
});
