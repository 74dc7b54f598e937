import { type ChannelModel, type ConfirmChannel, connect, type ConsumeMessage } from 'amqplib';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine, WorkerFleetQuery } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { waitFor } from '@tasksys/testing';
import { TaskProbes } from '../test/task-probes';
import { WorkerFleet } from '../test/worker-fleet';

const SQL_TARGET_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const MANAGEMENT = 'http://127.0.0.1:15672';
const AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;

/**
 * Routing by task type against real worker processes and a real broker: a queue per type bound by
 * its exact key and declared by the workers that serve it, the backup exchange catching a type no
 * worker serves (and the messages redriven once one binds), priorities, isolation of one type's
 * flood from another type's workers, and the move from the single work queue of older versions.
 */
describe('routing by task type (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let amqp: ChannelModel;
  let ch: ConfirmChannel;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    probes = new TaskProbes(t.db, sm);
    messaging = testMessagingConfig({ RETRY_TIERS_MS: '500,2000' });
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_LEASE_MS: '3000',
        WORKER_SHUTDOWN_GRACE_MS: '0',
        OUTBOX_POLL_MS: '100',
        SWEEP_INTERVAL_MS: '500',
        SWEEP_GRACE_MS: '2000',
        LOG_LEVEL: 'info',
      },
      `${messaging.TASKS_NAMESPACE}-r`,
    );
    amqp = await connect(messaging.RABBITMQ_URL);
    ch = await amqp.createConfirmChannel();
  }, 60_000);

  afterEach(async () => {
    await fleet.stopAll();
    // Each scenario starts from no work queues at all, as a fresh deployment would.
    const clean = await amqp.createChannel();
    clean.on('error', () => undefined);
    for (const q of [...topology().servedQueues(), topology().queues.legacyWork]) await clean.deleteQueue(q);
    await clean.purgeQueue(topology().queues.unrouted).catch(() => undefined);
    await clean.close().catch(() => undefined);
    await t.db.query(`DELETE FROM outbox`);
    await t.db.query(`DELETE FROM workers`); // killed ones would count as alive for 15 s
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await amqp?.close().catch(() => undefined);
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  let probes: TaskProbes;
  const submit = (n: number, type: string, payload: Record<string, unknown>, priority = 0) =>
    probes.submit(n, payload, { type, priority, timeoutMs: 60_000 });
  const statuses = (ids: string[]) => probes.statusCounts(ids);
  const allSucceeded = (ids: string[], timeoutMs: number) => probes.allIn(ids, 'succeeded', timeoutMs);

  /** The topology of older versions (one queue bound with #), holding the work messages of `ids` as that version relayed them. */
  async function oldTopologyWith(ids: string[]): Promise<string> {
    const legacy = topology().queues.legacyWork;
    const ns = messaging.TASKS_NAMESPACE;
    await ch.assertExchange(ns, 'topic', { durable: true, arguments: { 'alternate-exchange': `${ns}.unrouted` } });
    await ch.assertQueue(legacy, { durable: true, arguments: { 'x-dead-letter-exchange': `${ns}.dlx` } });
    await ch.bindQueue(legacy, ns, '#');
    const rows: { id: string; routing_key: string; body: unknown; correlation_id: string }[] = await t.db.query(
      `SELECT id, routing_key, body, correlation_id FROM outbox WHERE correlation_id = ANY($1::text[])`,
      [ids],
    );
    for (const r of rows) {
      ch.publish(ns, r.routing_key, Buffer.from(JSON.stringify(r.body)), {
        persistent: true,
        correlationId: r.correlation_id,
      });
    }
    await ch.waitForConfirms();
    await t.db.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
    return legacy;
  }

  /** Whether `queue` is gone from the broker (a passive declare on a channel of its own). */
  async function queueGone(queue: string): Promise<boolean> {
    const probe = await amqp.createChannel();
    probe.on('error', () => undefined);
    const gone = await probe.checkQueue(queue).then(
      () => false,
      () => true,
    );
    await probe.close().catch(() => undefined);
    return gone;
  }

  /** The routing keys bound on the work exchange, as the broker reports them (management API). */
  async function workBindings(): Promise<string[]> {
    const url = `${MANAGEMENT}/api/exchanges/%2F/${encodeURIComponent(messaging.TASKS_NAMESPACE)}/bindings/source`;
    const res = await fetch(url, { headers: { authorization: AUTH } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { routing_key: string }[]).map((b) => b.routing_key).sort();
  }

  it('binds only the types a worker serves, by their exact keys: no # on the work exchange', async () => {
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep' });
    expect(await workBindings()).toEqual(['demo.sleep']);
    await fleet.start({ SQL_TARGET_URL, WORKER_TASK_TYPES: 'sql.query,demo.sleep' });
    expect(await workBindings()).toEqual(['demo.sleep', 'sql.query']);
    // No worker served demo.crash: it has no queue at all.
    const probe = await amqp.createChannel();
    probe.on('error', () => undefined); // the 404 closes this channel
    await expect(probe.checkQueue(topology().workQueue('demo.crash'))).rejects.toThrow(/404/);
  }, 60_000);

  it('keeps a task of a type no worker serves queued with its reason and its message in unrouted, then runs it once a worker serves the type', async () => {
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep' }); // it relays, but serves no sql.query
    const [id] = await submit(1, 'sql.query', { sql: 'SELECT 1 AS one' });
    await waitFor(
      'the message in unrouted',
      async () => (await ch.checkQueue(topology().queues.unrouted)).messageCount === 1,
      15_000,
    );
    expect(await statuses([id])).toEqual({ queued: 1 });
    const served = await new WorkerFleetQuery(t.db).servedTypes();
    expect([...served]).toEqual(['demo.sleep']); // so the api answers waiting: "no worker serves sql.query"

    const started = Date.now();
    await fleet.start({ SQL_TARGET_URL, WORKER_TASK_TYPES: 'sql.query' });
    await allSucceeded([id], 20_000);
    const ms = Date.now() - started;
    console.log(`unrouted sql.query task redriven and run ${ms} ms after a worker serving it started`);
    expect(ms).toBeLessThan(15_000);
    expect((await ch.checkQueue(topology().queues.unrouted)).messageCount).toBe(0);
  }, 60_000);

  it('still recovers a task whose unrouted message was lost, through the database sweep', async () => {
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep' });
    const [id] = await submit(1, 'sql.query', { sql: 'SELECT 2 AS two' });
    await waitFor(
      'the message in unrouted',
      async () => (await ch.checkQueue(topology().queues.unrouted)).messageCount === 1,
      15_000,
    );
    await ch.purgeQueue(topology().queues.unrouted); // lost
    await fleet.start({ SQL_TARGET_URL, WORKER_TASK_TYPES: 'sql.query' });
    await allSucceeded([id], 30_000);
  }, 60_000);

  it('starts higher priorities first on a one-slot worker, behind a backlog', async () => {
    await fleet.start({ WORKER_CONCURRENCY: '1', WORKER_TASK_TYPES: 'demo.sleep' });
    const low = await submit(30, 'demo.sleep', { ms: 100 });
    await waitFor('the backlog started', async () => ((await statuses(low))['succeeded'] ?? 0) >= 1, 20_000, 50);
    const high = await submit(3, 'demo.sleep', { ms: 100 }, 9);
    await allSucceeded([...low, ...high], 60_000);
    const rows: { id: string; started_at: Date }[] = await t.db.query(
      `SELECT id, started_at FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY started_at`,
      [[...low, ...high]],
    );
    const position = (id: string) => rows.findIndex((r) => r.id === id);
    const positions = high.map(position);
    console.log(`priority-9 tasks started at positions ${positions.join(', ')} of 33`);
    // Submitted when at most a few low ones had started: they overtake the rest of the backlog.
    for (const p of positions) expect(p).toBeLessThan(10);
  }, 90_000);

  it('keeps another type’s workers free while one type floods its own queue', async () => {
    await fleet.start({ WORKER_CONCURRENCY: '2', WORKER_TASK_TYPES: 'demo.sleep' });
    await fleet.start({ WORKER_CONCURRENCY: '2', SQL_TARGET_URL, WORKER_TASK_TYPES: 'sql.query' });
    const flood = await submit(300, 'demo.sleep', { ms: 200 }); // 30 s of work for two slots
    await waitFor(
      'the flood queued up',
      async () => (await ch.checkQueue(topology().workQueue('demo.sleep'))).messageCount > 200,
      20_000,
    );
    const quick = await submit(10, 'sql.query', { sql: 'SELECT 1' });
    await allSucceeded(quick, 20_000);
    const [wait] = await t.db.query(
      `SELECT max(extract(epoch FROM started_at - created_at) * 1000)::int AS max_ms FROM tasks WHERE id = ANY($1::uuid[])`,
      [quick],
    );
    const left = (await statuses(flood))['queued'] ?? 0;
    console.log(`sql.query submit-to-start max ${wait.max_ms} ms while ${left} demo.sleep tasks still waited`);
    expect(wait.max_ms).toBeLessThan(3000);
    expect(left).toBeGreaterThan(150);
  }, 90_000);

  it('declares its queue again when it vanished while the worker stayed connected', async () => {
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep' });
    const queue = topology().workQueue('demo.sleep');
    await ch.deleteQueue(queue); // by hand, or with a broker's data
    await waitFor('the queue back', async () => !(await queueGone(queue)), 15_000);
    expect(await workBindings()).toEqual(['demo.sleep']);
    const ids = await submit(5, 'demo.sleep', { ms: 5 });
    await allSucceeded(ids, 30_000);
  }, 60_000);

  it('keeps the old queue while a worker of the old version still consumes it, so a hand-back is not lost', async () => {
    const [id] = await submit(1, 'demo.sleep', { ms: 5 });
    const legacy = await oldTopologyWith([id]);
    // The old worker: it holds the task's message, unacked.
    const old = await amqp.createChannel();
    await old.prefetch(1);
    const message = await new Promise<ConsumeMessage>((ok) => void old.consume(legacy, (m) => m && ok(m)));
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep', SWEEP_GRACE_MS: '600000' });
    await waitFor('the # binding gone', async () => !(await workBindings()).includes('#'), 15_000);
    // Still there: a consumer holds a delivery it may hand back.
    expect((await ch.checkQueue(legacy)).consumerCount).toBe(1);
    // The old worker stops and hands its delivery back; the new one moves it on and removes the queue.
    old.nack(message, false, true);
    await old.close();
    await allSucceeded([id], 30_000);
    await waitFor('the old queue deleted', () => queueGone(legacy), 15_000);
  }, 60_000);

  it('moves an existing deployment from the single work queue: the old queue is drained, then removed, nothing lost', async () => {
    const ids = await submit(40, 'demo.sleep', { ms: 5 });
    const legacy = await oldTopologyWith(ids);
    expect((await ch.checkQueue(legacy)).messageCount).toBe(40);
    await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep', SWEEP_GRACE_MS: '600000' }); // the sweep must not be what saves them
    await allSucceeded(ids, 30_000);
    expect(await probes.runsPerTask(ids)).toEqual(ids.map(() => 1));
    await waitFor('the old queue deleted', () => queueGone(legacy), 15_000);
    expect(await workBindings()).toEqual(['demo.sleep']);
  }, 60_000);
});
