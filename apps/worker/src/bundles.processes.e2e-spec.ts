import { randomUUID } from 'node:crypto';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, OUTBOX_WORK_TASKS, type TestDatabase } from '@tasksys/tasks/testing';
import { waitFor } from '@tasksys/testing';
import { WorkerFleet } from '../test/worker-fleet';

/**
 * Bundles (docs/ARCHITECTURE.md, "Bundles") with real worker processes: a batch's tasks travel
 * 100 to a message, each runs and settles on its own, WORKER_CONCURRENCY counts tasks, and a
 * worker killed with a bundle half done loses nothing and commits nothing twice.
 */
describe('bundles (worker processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db, null, { TASK_BUNDLE_SIZE: 100 });
    messaging = { ...testMessagingConfig(), RETRY_TIERS_MS: [200, 1000, 5000] };
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      { WORKER_CONCURRENCY: '30', WORKER_LEASE_MS: '3000', WORKER_SHUTDOWN_GRACE_MS: '3000', LOG_LEVEL: 'info' },
    );
  }, 60_000);

  afterEach(() => fleet.stopAll(), 30_000);
  afterAll(async () => {
    await fleet?.stopAll();
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  /** A batch submit's shape: one statement, so its tasks share bundles. */
  async function submitBatch(payloads: Record<string, unknown>[]): Promise<string[]> {
    const items = payloads.map((payload) => ({
      id: randomUUID(),
      owner: 'bundles',
      type: 'demo.sleep',
      payload,
      maxAttempts: 3,
      timeoutMs: 60_000,
      start: true,
      actor: 'test',
    }));
    await sm.createMany(items);
    return items.map((i) => i.id);
  }

  const counts = async (ids: string[]) =>
    Object.fromEntries(
      (
        await t.db.query(`SELECT status, count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) GROUP BY status`, [
          ids,
        ])
      ).map((r: { status: string; n: number }) => [r.status, r.n]),
    ) as Record<string, number>;
  const allSucceeded = (ids: string[], timeoutMs: number) =>
    waitFor(`all ${ids.length} succeeded`, async () => (await counts(ids))['succeeded'] === ids.length, timeoutMs);
  /** Events per task of `to` status: exactly one succeeded each is the "committed once" invariant. */
  const eventsPerTask = async (ids: string[], to: string) =>
    (
      await t.db.query(
        `SELECT count(e.task_id)::int AS n FROM unnest($1::uuid[]) AS x(id)
           LEFT JOIN task_events e ON e.task_id = x.id AND e.to_status = $2 GROUP BY x.id`,
        [ids, to],
      )
    ).map((r: { n: number }) => r.n);

  it('sends a batch of 500 as 5 messages; 2 workers of concurrency 30 never run more than 30 each, and each task runs once', async () => {
    await Promise.all([fleet.start(), fleet.start()]);
    const ids = await submitBatch(Array.from({ length: 500 }, () => ({ ms: 150 })));
    const [shape] = await t.db.query(
      `SELECT count(DISTINCT outbox_id)::int AS messages, count(*)::int AS tasks FROM ${OUTBOX_WORK_TASKS} w WHERE task_id = ANY($1::text[])`,
      [ids],
    );
    expect(shape).toEqual({ messages: 5, tasks: 500 });
    let most = 0;
    const perWorker: Record<string, number> = {};
    await waitFor(
      'all 500 succeeded, sampling the running ones per worker',
      async () => {
        for (const r of await t.db.query(
          `SELECT lease_owner, count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'running' GROUP BY lease_owner`,
          [ids],
        )) {
          most = Math.max(most, r.n);
          perWorker[r.lease_owner] = Math.max(perWorker[r.lease_owner] ?? 0, r.n);
        }
        return (await counts(ids))['succeeded'] === ids.length;
      },
      60_000,
      20,
    );
    expect(most).toBeLessThanOrEqual(30);
    expect(Object.keys(perWorker)).toHaveLength(2); // the bundles' remainders went on to the other worker too
    expect(await eventsPerTask(ids, 'running')).toEqual(ids.map(() => 1));
    expect(await eventsPerTask(ids, 'succeeded')).toEqual(ids.map(() => 1));
  }, 90_000);

  it('retries, fails and dead-letters per task: the rest of the bundle runs once', async () => {
    await fleet.start();
    const payloads = Array.from({ length: 100 }, (_, i) =>
      i % 10 === 1 ? { ms: 1, failTimes: 1 } : i % 10 === 2 ? { ms: 1, fatal: true } : { ms: 1 },
    );
    const ids = await submitBatch(payloads);
    await waitFor(
      'every task terminal',
      async () => {
        const c = await counts(ids);
        return (c['succeeded'] ?? 0) + (c['failed'] ?? 0) === 100;
      },
      60_000,
    );
    const rows: { id: string; status: string; attempt: number }[] = await t.db.query(
      `SELECT id, status, attempt FROM tasks WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    payloads.forEach((p, i) => {
      const row = byId.get(ids[i])!;
      if ('fatal' in p) expect(row).toMatchObject({ status: 'failed', attempt: 1 });
      else if ('failTimes' in p) expect(row).toMatchObject({ status: 'succeeded', attempt: 2 });
      else expect(row).toMatchObject({ status: 'succeeded', attempt: 1 });
    });
    // The fatal ones' dead letters are single-task messages, not the bundle.
    const conn = await (await import('amqplib')).connect(messaging.RABBITMQ_URL);
    const ch = await conn.createChannel();
    const dead: string[] = [];
    await waitFor(
      '10 dead letters',
      async () => {
        for (let m = await ch.get(topology().queues.dead, { noAck: true }); m; m = await ch.get(topology().queues.dead))
          dead.push((JSON.parse(m.content.toString()) as { taskId: string }).taskId);
        return dead.length >= 10;
      },
      10_000,
    );
    await conn.close();
    expect(dead.sort()).toEqual(ids.filter((_, i) => i % 10 === 2).sort());
  }, 90_000);

  it('defers a bundle of a type this worker cannot run whole, unclaimed: it travels on under its own type', async () => {
    await fleet.start();
    // demo.crash needs DEMO_ALLOW_CRASH, which this worker lacks: it neither claims nor splits them.
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await sm.createMany(
      ids.map((id) => ({
        id,
        owner: 'bundles',
        type: 'demo.crash',
        payload: {},
        maxAttempts: 3,
        timeoutMs: 60_000,
        start: false,
        actor: 'test',
      })),
    );
    const before = await t.db.query(`SELECT id, status, attempt FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id`, [
      ids,
    ]);
    const conn = await (await import('amqplib')).connect(messaging.RABBITMQ_URL);
    try {
      const ch = await conn.createConfirmChannel();
      // Misrouted into a queue this worker consumes, as a bundle of a type it does not serve.
      ch.publish(
        topology().exchanges.work,
        topology().routingKey('demo.sleep'),
        Buffer.from(JSON.stringify({ v: 2, type: 'demo.crash', taskIds: ids })),
        { persistent: true, messageId: 'misrouted-bundle', headers: { 'x-schema-version': 2 } },
      );
      await ch.waitForConfirms();
      // Deferred under demo.crash, which no worker here serves: the alternate exchange keeps it in unrouted.
      const back = await waitFor(
        'the bundle in unrouted',
        () => ch.get(topology().queues.unrouted, { noAck: true }),
        30_000,
      );
      expect(JSON.parse(back.content.toString())).toEqual({ v: 2, type: 'demo.crash', taskIds: ids });
      expect(back.fields.routingKey).toBe(topology().routingKey('demo.crash'));
      expect(back.properties.headers?.['x-task-attempt']).toBe(0);
    } finally {
      await conn.close();
    }
    expect(
      await t.db.query(`SELECT id, status, attempt FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids]),
    ).toEqual(before);
  }, 60_000);

  it('survives kill -9 of the worker running a bundle: the bundle comes back whole, nothing is lost or committed twice', async () => {
    const first = await fleet.start();
    const ids = await submitBatch(Array.from({ length: 100 }, (_, i) => ({ ms: i < 50 ? 50 : 2500 })));
    await waitFor(
      'half the bundle done, the rest running',
      async () => {
        const c = await counts(ids);
        return (c['succeeded'] ?? 0) >= 40 && (c['running'] ?? 0) >= 20;
      },
      30_000,
      20,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    await fleet.start();
    await allSucceeded(ids, 60_000);
    expect(await eventsPerTask(ids, 'succeeded')).toEqual(ids.map(() => 1));
  }, 120_000);
});
