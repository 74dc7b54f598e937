import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { buildTopology, declareTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { type AppProcess, waitFor } from '@tasksys/testing';
import { type SubmitOptions, TaskProbes, workerMetric } from '../test/task-probes';
import { WorkerFleet } from '../test/worker-fleet';

/**
 * The holes an outsider found (issue 12), each against real processes, PostgreSQL and RabbitMQ:
 * a broker that lost its messages, a backlog that must not be mistaken for loss, a claim whose
 * answer was lost, a late cancel signal, an early copy of a retry, a worker that cannot run a type,
 * and hand-backs that must not burn a quorum queue's delivery limit.
 */
describe('worker hardening (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let amqp: ChannelModel;
  let ch: ConfirmChannel;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((t) => t.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    probes = new TaskProbes(t.db, sm);
    // One tier of 3 s: every retry and deferral waits exactly that, so timings are unambiguous.
    messaging = { ...testMessagingConfig(), RETRY_TIERS_MS: [3000] };
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_CONCURRENCY: '20',
        WORKER_LEASE_MS: '3000',
        WORKER_SHUTDOWN_GRACE_MS: '0',
        SWEEP_INTERVAL_MS: '500',
        SWEEP_GRACE_MS: '2000',
        OUTBOX_POLL_MS: '200',
        SQL_TARGET_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
        LOG_LEVEL: 'info',
      },
    );
    amqp = await connect(messaging.RABBITMQ_URL);
    await declareTopology(amqp, topology());
    ch = await amqp.createConfirmChannel();
  }, 60_000);

  afterEach(async () => {
    await fleet.stopAll();
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await amqp?.close().catch(() => undefined);
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  let probes: TaskProbes;
  const submit = (n: number, payload: Record<string, unknown>, opts: SubmitOptions = {}) =>
    probes.submit(n, payload, opts);
  const row = (id: string) => probes.row(id);
  const allSucceeded = (ids: string[], timeoutMs: number) => probes.allIn(ids, 'succeeded', timeoutMs);
  const metric = (w: AppProcess, name: string, labels = '') => workerMetric(w.port, name, labels);

  /** What the outbox relay does: publish each outbox row of `ids` (confirmed), then delete it. */
  async function relayByHand(ids: string[]): Promise<void> {
    const rows: { id: string; routing_key: string; body: unknown; correlation_id: string }[] = await t.db.query(
      `SELECT id, routing_key, body, correlation_id FROM outbox WHERE correlation_id = ANY($1::text[]) AND exchange = 'work'`,
      [ids],
    );
    expect(rows).toHaveLength(ids.length);
    for (const r of rows) {
      ch.publish(topology().exchanges.work, r.routing_key, Buffer.from(JSON.stringify(r.body)), {
        persistent: true,
        correlationId: r.correlation_id,
      });
    }
    await ch.waitForConfirms();
    await t.db.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
  }

  it('recovers queued tasks whose messages the broker lost (work queue purged while no worker ran), each once', async () => {
    const ids = await submit(30, { ms: 1 });
    await relayByHand(ids);
    expect((await ch.checkQueue(topology().workQueue('demo.sleep'))).messageCount).toBe(30);
    await ch.purgeQueue(topology().workQueue('demo.sleep')); // the broker forgets
    const started = Date.now();
    const w = await fleet.start();
    await allSucceeded(ids, 30_000);
    const recoveredMs = Date.now() - started;
    // Within the grace period (2 s) plus a few sweeps, not after an operator.
    expect(recoveredMs).toBeLessThan(15_000);
    expect(await metric(w, 'tasksys_swept_tasks_total', 'kind="queued"')).toBe(30);
    const runs: { n: number }[] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running' GROUP BY task_id`,
      [ids],
    );
    expect(runs.map((r) => r.n)).toEqual(ids.map(() => 1));
  }, 60_000);

  it('re-enqueues nothing while a legitimate backlog drains, however long its tasks have waited', async () => {
    // One slot, 120 tasks of 50 ms: most wait far longer than the 2-s grace, with their messages in the queue.
    const ids = await submit(120, { ms: 50 });
    const w = await fleet.start({ WORKER_CONCURRENCY: '1' });
    await allSucceeded(ids, 60_000);
    expect(await metric(w, 'tasksys_swept_tasks_total', 'kind="queued"')).toBe(0);
    expect(await metric(w, 'tasksys_duplicate_deliveries_total')).toBe(0);
  }, 90_000);

  it('sweeps stranded tasks only of the types it serves: a group that is down is not flooded', async () => {
    // A retrying sql.query task long past due (its worker group is down) and a demo.sleep one.
    const [sql] = await submit(1, { sql: 'SELECT 1' }, { type: 'sql.query' });
    const [sleep] = await submit(1, { ms: 1 });
    await t.db.query(`DELETE FROM outbox WHERE correlation_id = ANY($1::text[])`, [[sql, sleep]]);
    await t.db.query(
      `UPDATE tasks SET status = 'retrying', attempt = 1, run_after = now() - interval '1 hour', updated_at = now() - interval '1 hour'
        WHERE id = ANY($1::uuid[])`,
      [[sql, sleep]],
    );
    const w = await fleet.start({ WORKER_TASK_TYPES: 'demo.sleep' });
    await allSucceeded([sleep], 20_000);
    expect(await metric(w, 'tasksys_swept_tasks_total', 'kind="stranded"')).toBe(1);
    // Several sweeps later, still no copy for the type nobody here serves.
    await new Promise((r) => setTimeout(r, 2000)); // four sweep intervals
    expect(await metric(w, 'tasksys_swept_tasks_total', 'kind="stranded"')).toBe(1);
    expect(await row(sql)).toMatchObject({ status: 'retrying' });
    expect(
      (
        (await t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [sql])) as { n: number }[]
      )[0].n,
    ).toBe(0);
    await t.db.query(`UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE id = $1`, [sql]);
  }, 60_000);

  it('adopts a task whose claim committed but whose answer was lost, without spending an attempt', async () => {
    // The claim of this task (maxAttempts 1) takes 3 s on the server; the worker's client gives up
    // on the answer after 1.5 s, while the server goes on and commits it: the claim's answer is lost.
    const [id] = await submit(1, { ms: 1 }, { maxAttempts: 1 });
    await t.db.query(`DELETE FROM outbox WHERE correlation_id = $1`, [id]);
    await t.db.query(`
      CREATE FUNCTION slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.id = '${id}' AND OLD.status = 'queued' AND NEW.status = 'running' THEN PERFORM pg_sleep(3); END IF;
        RETURN NEW;
      END $$`);
    await t.db.query(`CREATE TRIGGER slow_claim BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION slow_claim()`);
    try {
      const w = await fleet.start({ DATABASE_QUERY_TIMEOUT_MS: '1500' });
      await sm.enqueueAgain([id], ['queued']);
      await allSucceeded([id], 30_000);
      // Before adoption, the retried claim found it running under a live lease, deferred it, and the
      // takeover after the lease was refused (no attempt left): the task failed as abandoned.
      expect(await row(id)).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(await metric(w, 'tasksys_task_duration_seconds_count', 'outcome="succeeded"')).toBe(1);
    } finally {
      await t.db.query(`DROP TRIGGER slow_claim ON tasks; DROP FUNCTION slow_claim()`);
    }
  }, 60_000);

  it('does not adopt the runs of a previous incarnation under the same WORKER_ID: a task that kills its worker still spends its attempts', async () => {
    // As after a restart of a pod whose name is its WORKER_ID: the task runs under that name's lease.
    const [id] = await submit(1, { ms: 1 }, { maxAttempts: 1 });
    await t.db.query(`DELETE FROM outbox WHERE correlation_id = $1`, [id]);
    expect((await sm.claim(id, 'same-name', 3000)).applied).toBe(true);
    await sm.enqueueAgain([id], ['running']);
    await fleet.start({ WORKER_ID: 'same-name' });
    // Not run again under the old attempt: once the lease expired, with no attempt left, it failed.
    await waitFor('failed as abandoned', async () => (await row(id)).status === 'failed', 30_000);
    expect(await row(id)).toMatchObject({ status: 'failed', attempt: 1 });
  }, 60_000);

  it('ignores a late cancel signal for an earlier attempt: the newer run goes on', async () => {
    const w = await fleet.start();
    const [id] = await submit(1, { ms: 4000, steps: 4 });
    await waitFor('attempt 1 running', async () => (await row(id)).status === 'running');
    await sm.cancel(id, 'owner:test'); // signal for attempt 1 goes out through the outbox
    // Stopped by the signal or by the next heartbeat, whichever comes first.
    const aborted = async () =>
      (await metric(w, 'tasksys_task_duration_seconds_count', 'outcome="cancelled"')) +
      (await metric(w, 'tasksys_task_duration_seconds_count', 'outcome="lease-lost"'));
    await waitFor('attempt 1 aborted', async () => (await aborted()) === 1);
    await sm.retry(id, 'owner:test');
    await waitFor('attempt 2 running', async () => {
      const r = await row(id);
      return r.status === 'running' && r.attempt === 2;
    });
    expect(await aborted()).toBe(1);
    // The old signal, arriving late (redelivered, delayed): it names attempt 1.
    ch.publish(
      topology().exchanges.control,
      '',
      Buffer.from(JSON.stringify({ v: 1, kind: 'cancel', taskId: id, attempt: 1 })),
    );
    await ch.waitForConfirms();
    await allSucceeded([id], 20_000);
    expect(await row(id)).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(await aborted()).toBe(1);
  }, 60_000);

  it('does not let an early copy of a retry skip its backoff', async () => {
    await fleet.start();
    const [id] = await submit(1, { ms: 1, failTimes: 1 });
    await waitFor('retrying', async () => (await row(id)).status === 'retrying', 20_000, 20);
    // A duplicate of the work message, published right away (say, a redriven copy).
    ch.publish(
      topology().exchanges.work,
      'demo.sleep',
      Buffer.from(JSON.stringify({ v: 1, taskId: id, type: 'demo.sleep' })),
      {
        persistent: true,
      },
    );
    await ch.waitForConfirms();
    await allSucceeded([id], 20_000);
    const events: { to_status: string; at: Date }[] = await t.db.query(
      `SELECT to_status, at FROM task_events WHERE task_id = $1 ORDER BY id`,
      [id],
    );
    expect(events.map((e) => e.to_status)).toEqual(['queued', 'running', 'retrying', 'running', 'succeeded']);
    // The only tier is 3 s: the second run started no earlier than that after the failure.
    expect(events[3].at.getTime() - events[2].at.getTime()).toBeGreaterThanOrEqual(3000 - 300);
  }, 60_000);

  it('leaves a task a worker cannot run (no SQL target here) queued, untouched, for a worker that can', async () => {
    const without = await fleet.start({ SQL_TARGET_URL: '' });
    const [id] = await submit(1, { sql: 'SELECT 1 AS one' }, { type: 'sql.query' });
    // It does not serve sql.query, so it neither consumes that queue nor fails the task.
    await waitFor(
      'the message waiting in the sql.query queue',
      async () => (await ch.checkQueue(topology().workQueue('sql.query'))).messageCount === 1,
    );
    expect((await ch.checkQueue(topology().workQueue('sql.query'))).consumerCount).toBe(0);
    expect(await metric(without, 'tasksys_task_duration_seconds_count')).toBe(0);
    expect(await row(id)).toMatchObject({ status: 'queued', attempt: 0 });
    await fleet.start();
    await allSucceeded([id], 30_000);
    expect(await row(id)).toMatchObject({ status: 'succeeded', attempt: 1 });
  }, 60_000);
});

describe('hand-backs on quorum queues (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let amqp: ChannelModel;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((t) => t.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    messaging = testMessagingConfig({ RABBITMQ_QUEUE_TYPE: 'quorum', RABBITMQ_DELIVERY_LIMIT: '2' });
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        RABBITMQ_QUEUE_TYPE: 'quorum',
        RABBITMQ_DELIVERY_LIMIT: '2',
        WORKER_LEASE_MS: '3000',
        WORKER_SHUTDOWN_GRACE_MS: '0',
        OUTBOX_POLL_MS: '200',
        // Long: the sweeper must not be what saves the task here.
        SWEEP_GRACE_MS: '600000',
        LOG_LEVEL: 'info',
      },
      `${messaging.TASKS_NAMESPACE}-q`,
    );
    amqp = await connect(messaging.RABBITMQ_URL);
  }, 60_000);

  afterAll(async () => {
    await fleet?.stopAll();
    await amqp?.close().catch(() => undefined);
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  it('hands a running task back on SIGTERM five times, past x-delivery-limit 2, and it still runs to the end', async () => {
    const { task } = await sm.create(
      { owner: 'test', type: 'demo.sleep', payload: { ms: 3000, steps: 3 }, maxAttempts: 3, timeoutMs: 60_000 },
      { start: true, actor: 'owner:test' },
    );
    for (let i = 1; i <= 5; i++) {
      const w = await fleet.start();
      await waitFor(
        `run ${i} started`,
        async () => (await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]))[0].status === 'running',
      );
      w.child.kill('SIGTERM');
      expect(await w.exited).toEqual({ code: 0, signal: null });
      expect((await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]))[0].status).toBe('queued');
    }
    await fleet.start();
    await waitFor(
      'succeeded',
      async () => (await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]))[0].status === 'succeeded',
      30_000,
    );
    const ch = await amqp.createChannel();
    // Nothing was dead-lettered by the broker on the way.
    expect((await ch.checkQueue(topology().queues.dead)).messageCount).toBe(0);
    await ch.close();
  }, 120_000);
});
