import { type Channel, type ChannelModel, connect, type MessageProperties } from 'amqplib';
import { AmqpConnection, QueueStatsReader, TaskPublisher, Topology } from '@tasksys/messaging';
import { BUILTIN_TASK_TYPES, TaskRetention, TaskStateMachine } from '@tasksys/tasks';
import { testRabbitmqUrl, waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from '../../testing/api-harness';

const sleepTask = (ms = 10) => ({ type: 'demo.sleep', payload: { ms } });
const ADMIN_ROUTES: [string, string, unknown?][] = [
  ['GET', '/v1/admin/queues'],
  ['GET', '/v1/admin/dead-letters'],
  ['POST', '/v1/admin/dead-letters/redrive', {}],
  ['GET', '/v1/admin/unrouted'],
  ['POST', '/v1/admin/unrouted/redrive', {}],
  ['GET', '/v1/admin/workers'],
  ['POST', '/v1/admin/reconcile', {}],
];

describe('admin API (real api over HTTP, real PostgreSQL and RabbitMQ with its management plugin)', () => {
  let h: ApiHarness;
  let alice: string;
  let sm: TaskStateMachine;
  let publisher: TaskPublisher;
  let topology: Topology;
  let conn: ChannelModel;
  let ch: Channel;

  beforeAll(async () => {
    h = await startApi({ WORKERS_EXPECTED: '2' });
    alice = await h.newKey('alice');
    sm = h.app.get(TaskStateMachine);
    publisher = h.app.get(TaskPublisher);
    // The work queue of demo.sleep, as a worker serving it would declare it (the api declares none).
    topology = await h.serveTypes(['demo.sleep']);
    conn = await connect(testRabbitmqUrl());
    ch = await conn.createChannel();
  });
  afterAll(async () => {
    await conn?.close().catch(() => undefined);
    await h?.close();
  });

  const createTask = async (body = sleepTask()) => {
    const r = await h.call('POST', '/v1/tasks', { key: alice, body });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  /** A task that ran out of attempts, through the state machine as a worker would drive it. */
  const failedTask = async () => {
    const id = await createTask();
    const claimed = await sm.claim(id, 'test-worker', 30_000);
    expect(claimed.applied).toBe(true);
    expect(
      (await sm.failFinal(id, claimed.task!.attempt, { code: 'TEST.BOOM', message: 'boom' }, 'test-worker')).applied,
    ).toBe(true);
    return id;
  };
  const deadLetter = (body: Buffer, taskId?: string) =>
    publisher.publishDeadLetter(body, { correlationId: taskId, headers: {} } as MessageProperties, {
      code: 'TASK.MAX_ATTEMPTS',
      message: 'boom',
      queue: topology.workQueue('demo.sleep'),
      routingKey: 'demo.sleep',
    });
  const taskMessage = (taskId: string) => Buffer.from(JSON.stringify({ v: 1, taskId, type: 'demo.sleep' }));
  const status = async (id: string) => (await h.call('GET', `/v1/tasks/${id}`)).body.status as string;

  it('answers 403 to a user key and 401 without one on every admin route', async () => {
    for (const [method, path, body] of ADMIN_ROUTES) {
      const r = await h.call(method, path, { key: alice, body });
      expect([path, r.status, r.body.code]).toEqual([path, 403, 'AUTH.FORBIDDEN']);
      expect([path, (await h.call(method, path, { key: null, body })).status]).toEqual([path, 401]);
    }
  });

  it('lists every queue of the topology from the management API, and the work queue’s figures follow its messages', async () => {
    const r = await h.call('GET', '/v1/admin/queues');
    expect(r.status).toBe(200);
    expect(r.body.source).toBe('management');
    expect(r.body.items.map((q: { name: string; role: string }) => `${q.role}:${q.name}`)).toEqual([
      // One work queue per known type; only demo.sleep's exists (a worker for it declared it).
      ...BUILTIN_TASK_TYPES.map((t) => `work:${topology.workQueue(t.type)}`),
      ...topology.queues.retry.map((t) => `retry:${t.name}`),
      `dead:${topology.queues.dead}`,
      `unrouted:${topology.queues.unrouted}`,
    ]);
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    for (let i = 0; i < 3; i++) await createTask();
    // The management API samples every few seconds: poll until it shows the three messages.
    expect(r.body.items.map((q: { type: string | null; exists: boolean }) => [q.type, q.exists]).slice(0, 3)).toEqual([
      ['demo.sleep', true],
      ['demo.crash', false],
      ['sql.query', false],
    ]);
    const work = await waitFor(
      'the management API to show 3 ready messages in the work queue',
      async () => {
        const q = (await h.call('GET', '/v1/admin/queues')).body.items[0];
        // A queue the management API has not sampled yet is answered by AMQP (unacked null) meanwhile.
        return q.ready === 3 && q.unacked !== null ? q : undefined;
      },
      20_000,
    );
    expect(work).toMatchObject({ messages: 3, ready: 3, unacked: 0, consumers: 0 });
    const metrics = await waitFor(
      'tasksys_queue_messages to show 3',
      async () => {
        const text = (await h.call('GET', '/metrics', { key: null })).text;
        return text.includes(`tasksys_queue_messages{queue="${topology.workQueue('demo.sleep')}"} 3`)
          ? text
          : undefined;
      },
      10_000,
    );
    expect(metrics).toContain(`tasksys_queue_consumers{queue="${topology.workQueue('demo.sleep')}"} 0`);
    expect(metrics).toContain(`tasksys_queue_messages{queue="${topology.queues.dead}"} 0`);
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
  }, 40_000);

  it('falls back to AMQP (ready and consumers, unacked null) when the management API is unreachable', async () => {
    const reader = new QueueStatsReader(
      h.app.get(AmqpConnection),
      topology,
      { RABBITMQ_URL: testRabbitmqUrl() },
      { RABBITMQ_MANAGEMENT_URL: 'http://guest:guest@127.0.0.1:1', RABBITMQ_MANAGEMENT_TIMEOUT_MS: 500 },
    );
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    await publisher.publishTask(
      { v: 1, taskId: '00000000-0000-4000-8000-000000000001', type: 'demo.sleep' },
      { attempt: 0 },
    );
    const report = await reader.read(['demo.sleep', 'report.build']);
    expect(report.source).toBe('amqp');
    expect(report.queues.slice(0, 2)).toEqual([
      {
        name: topology.workQueue('demo.sleep'),
        role: 'work',
        type: 'demo.sleep',
        exists: true,
        messages: 1,
        ready: 1,
        unacked: null,
        consumers: 0,
        oldestMessageAgeMs: null,
      },
      // No worker ever served it: no queue.
      {
        name: topology.workQueue('report.build'),
        role: 'work',
        type: 'report.build',
        exists: false,
        messages: 0,
        ready: 0,
        unacked: null,
        consumers: 0,
        oldestMessageAgeMs: null,
      },
    ]);
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
  });

  it('lists dead letters without losing them, redrives chosen ones, re-enqueues live ones, keeps malformed ones until purged', async () => {
    const failed = await failedTask();
    const alsoFailed = await failedTask();
    // Still queued: its dead letter may be the last copy of its work (dead-lettered by the broker).
    const queued = await createTask();
    await waitFor(
      'the queued task’s work message relayed',
      async () =>
        (await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [queued]))[0].n === 0,
      10_000,
    );
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    await deadLetter(taskMessage(failed), failed);
    await deadLetter(taskMessage(alsoFailed), alsoFailed);
    await deadLetter(taskMessage(queued), queued);
    await deadLetter(Buffer.from('not json {'));

    for (let i = 0; i < 2; i++) {
      const list = await h.call('GET', '/v1/admin/dead-letters?limit=10');
      expect(list.status).toBe(200);
      expect(list.body.total).toBe(4);
      expect(
        list.body.items.map((m: { taskId: string | null; malformed: boolean }) => [m.taskId, m.malformed]),
      ).toEqual([
        [failed, false],
        [alsoFailed, false],
        [queued, false],
        [null, true],
      ]);
      expect(list.body.items[0]).toMatchObject({
        type: 'demo.sleep',
        routingKey: 'demo.sleep',
        reasonCode: 'TASK.MAX_ATTEMPTS',
        reason: 'boom',
      });
      expect(list.body.items[3].body).toBe('not json {');
    }
    expect((await h.call('GET', '/v1/admin/dead-letters?limit=2')).body.items).toHaveLength(2);
    expect((await h.call('GET', '/v1/admin/dead-letters?limit=0')).status).toBe(400);

    const one = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: { taskIds: [failed] } });
    expect([one.status, one.body]).toEqual([
      200,
      { redriven: 1, requeued: 0, stale: 0, skipped: 3, missing: 0, purged: 0 },
    ]);
    expect(await status(failed)).toBe('queued');
    expect(await status(alsoFailed)).toBe('failed');
    const events = (await h.call('GET', `/v1/tasks/${failed}/events`)).body.items;
    expect(events.at(-1)).toMatchObject({ from: 'failed', to: 'queued', actor: 'admin:admin' });
    // The work message went through the outbox and the relay: the outbox row is gone once confirmed.
    await waitFor(
      'the redriven task’s work message relayed',
      async () =>
        (await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [failed]))[0].n === 0,
      10_000,
    );

    const all = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: {} });
    expect(all.body).toEqual({ redriven: 1, requeued: 1, stale: 0, skipped: 1, missing: 0, purged: 0 });
    expect(await status(alsoFailed)).toBe('queued');
    expect(await status(queued)).toBe('queued');
    // The queued task's work is in the work queue again, not gone with its dead letter.
    await waitFor(
      'the queued task’s work message in the work queue',
      async () => {
        const got = await ch.get(topology.workQueue('demo.sleep'), { noAck: true });
        return got && JSON.parse(got.content.toString()).taskId === queued;
      },
      10_000,
    );
    const left = await h.call('GET', '/v1/admin/dead-letters');
    expect(left.body.items.map((m: { malformed: boolean }) => m.malformed)).toEqual([true]);

    const purge = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: { purgeMalformed: true } });
    expect(purge.body).toEqual({ redriven: 0, requeued: 0, stale: 0, skipped: 0, missing: 0, purged: 1 });
    expect((await ch.checkQueue(topology.queues.dead)).messageCount).toBe(0);

    const bad = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: { taskIds: ['nope'] } });
    expect([bad.status, bad.body.field]).toEqual([400, 'taskIds']);
  });

  it('keeps and still lists the dead letter of a task deleted by retention, and redrive answers it as missing', async () => {
    const gone = await failedTask();
    await waitFor(
      'the task’s work message relayed',
      async () =>
        (await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [gone]))[0].n === 0,
      10_000,
    );
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    await deadLetter(taskMessage(gone), gone);
    await h.t.db.query(`UPDATE tasks SET finished_at = finished_at - interval '31 days' WHERE id = $1`, [gone]);
    const retention = new TaskRetention(
      h.t.db,
      {
        TASK_RETENTION_MS: 30 * 86_400_000,
        TASK_RETENTION_BATCH_SIZE: 1000,
        TASK_RETENTION_PAUSE_MS: 0,
        TASK_RETENTION_INTERVAL_MS: 60_000,
      },
      h.t.config,
    );
    expect(await retention.runOnce()).toMatchObject({ ran: true, tasks: 1 });
    expect((await h.call('GET', `/v1/tasks/${gone}`, { key: alice })).status).toBe(404);

    for (let i = 0; i < 2; i++) {
      const list = await h.call('GET', '/v1/admin/dead-letters');
      expect(list.body.items.map((m: { taskId: string | null }) => m.taskId)).toEqual([gone]);
      const redrive = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: { taskIds: [gone] } });
      expect([redrive.status, redrive.body]).toEqual([
        200,
        { redriven: 0, requeued: 0, stale: 0, skipped: 0, missing: 1, purged: 0 },
      ]);
    }
    expect((await ch.checkQueue(topology.queues.dead)).messageCount).toBe(1);
    await ch.purgeQueue(topology.queues.dead);
  });

  it('lists a dead-lettered bundle with every task it carries, and redrives only the chosen ones: the rest keep a dead letter', async () => {
    await ch.purgeQueue(topology.queues.dead);
    const [a, b, c] = [await failedTask(), await failedTask(), await failedTask()];
    const gone = '00000000-0000-4000-8000-0000000000dd';
    await deadLetter(Buffer.from(JSON.stringify({ v: 2, type: 'demo.sleep', taskIds: [a, b, c, gone] })), a);
    const listed = async () =>
      ((await h.call('GET', '/v1/admin/dead-letters')).body.items as { taskId: string; taskIds: string[] }[]).map(
        (m) => [m.taskId, m.taskIds],
      );
    expect(await listed()).toEqual([[a, [a, b, c, gone]]]);

    const one = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: { taskIds: [b] } });
    expect(one.body).toEqual({ redriven: 1, requeued: 0, stale: 0, skipped: 0, missing: 0, purged: 0 });
    expect([await status(a), await status(b), await status(c)]).toEqual(['failed', 'queued', 'failed']);
    // The others' dead letter replaces the bundle's, with its reason and routing key.
    const left = (await h.call('GET', '/v1/admin/dead-letters')).body.items;
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ taskIds: [a, c, gone], reasonCode: 'TASK.MAX_ATTEMPTS', routingKey: 'demo.sleep' });

    // All: the two failed ones are redriven; the task the database no longer has keeps its dead letter, alone.
    const all = await h.call('POST', '/v1/admin/dead-letters/redrive', { body: {} });
    expect(all.body).toEqual({ redriven: 2, requeued: 0, stale: 0, skipped: 0, missing: 1, purged: 0 });
    expect([await status(a), await status(c)]).toEqual(['queued', 'queued']);
    const last = (await h.call('GET', '/v1/admin/dead-letters')).body.items;
    expect(last.map((m: { taskIds: string[] }) => m.taskIds)).toEqual([[gone]]);
    expect(JSON.parse(last[0].body)).toEqual({ v: 1, taskId: gone, type: 'demo.sleep' });
    expect(last[0].headers['x-schema-version']).toBe(1);
    await ch.purgeQueue(topology.queues.dead);
  });

  it('lists unrouted messages and redrives them, confirmed, to the work exchange under their routing key', async () => {
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    const id = await failedTask();
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
    const other = '00000000-0000-4000-8000-0000000000aa';
    await publisher.publish(
      topology.exchanges.unrouted,
      'demo.sleep',
      { v: 1, taskId: id, type: 'demo.sleep' },
      { correlationId: id, messageId: 'unrouted-1' },
    );
    await publisher.publish(
      topology.exchanges.unrouted,
      'report.build',
      { v: 1, taskId: other, type: 'report.build' },
      { correlationId: other, messageId: 'unrouted-2' },
    );

    const list = await h.call('GET', '/v1/admin/unrouted');
    expect(list.status).toBe(200);
    expect(
      list.body.items.map((m: { taskId: string; routingKey: string; messageId: string }) => [
        m.messageId,
        m.taskId,
        m.routingKey,
      ]),
    ).toEqual([
      ['unrouted-1', id, 'demo.sleep'],
      ['unrouted-2', other, 'report.build'],
    ]);

    const chosen = await h.call('POST', '/v1/admin/unrouted/redrive', { body: { taskIds: [id] } });
    expect([chosen.status, chosen.body]).toEqual([200, { redriven: 1, skipped: 1, error: null }]);
    const moved = await waitFor(
      'the redriven message in the work queue',
      () => ch.get(topology.workQueue('demo.sleep'), { noAck: true }),
      5000,
    );
    expect([moved.properties.messageId, moved.fields.routingKey, JSON.parse(moved.content.toString()).taskId]).toEqual([
      'unrouted-1',
      'demo.sleep',
      id,
    ]);
    expect(
      (await h.call('GET', '/v1/admin/unrouted')).body.items.map((m: { messageId: string }) => m.messageId),
    ).toEqual(['unrouted-2']);

    expect((await h.call('POST', '/v1/admin/unrouted/redrive', { body: {} })).body).toEqual({
      redriven: 1,
      skipped: 0,
      error: null,
    });
    // No worker serves report.build: republished, it comes back through the alternate exchange.
    const back = await waitFor(
      'report.build back in unrouted',
      () => ch.get(topology.queues.unrouted, { noAck: true }),
      5000,
    );
    expect([back.properties.messageId, back.fields.routingKey]).toEqual(['unrouted-2', 'report.build']);

    // A bundle is chosen by any task it carries, and goes back whole (its tasks are all live).
    const second = '00000000-0000-4000-8000-0000000000bb';
    await publisher.publish(
      topology.exchanges.unrouted,
      'demo.sleep',
      { v: 2, type: 'demo.sleep', taskIds: [id, second] },
      { correlationId: id, messageId: 'unrouted-bundle' },
    );
    const bundle = await h.call('POST', '/v1/admin/unrouted/redrive', { body: { taskIds: [second] } });
    expect(bundle.body).toEqual({ redriven: 1, skipped: 0, error: null });
    const whole = await waitFor(
      'the bundle in the work queue',
      () => ch.get(topology.workQueue('demo.sleep'), { noAck: true }),
      5000,
    );
    expect([whole.properties.messageId, JSON.parse(whole.content.toString()).taskIds]).toEqual([
      'unrouted-bundle',
      [id, second],
    ]);
    await ch.purgeQueue(topology.workQueue('demo.sleep'));
  });

  it('reports workers alive (fresh heartbeat, not stopped) against WORKERS_EXPECTED, also in /metrics', async () => {
    await h.t.db.query(
      `INSERT INTO workers (id, host, pid, concurrency, in_flight, started_at, last_seen_at, stopped_at) VALUES
         ('w-alive', 'host-a', 11, 10, 3, now() - interval '1 hour', now(), NULL),
         ('w-silent', 'host-b', 12, 10, 1, now() - interval '1 hour', now() - interval '30 seconds', NULL),
         ('w-stopped', 'host-c', 13, 5, 0, now() - interval '1 hour', now(), now())`,
    );
    const r = await h.call('GET', '/v1/admin/workers');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ expected: 2, alive: 1 });
    expect(r.body.workers.map((w: { id: string; alive: boolean }) => [w.id, w.alive])).toEqual([
      ['w-alive', true],
      ['w-stopped', false],
      ['w-silent', false],
    ]);
    expect(r.body.workers[0]).toMatchObject({ host: 'host-a', pid: 11, concurrency: 10, inFlight: 3, stoppedAt: null });
    const metrics = (await h.call('GET', '/metrics', { key: null })).text;
    expect(metrics).toMatch(/^tasksys_workers_alive 1$/m);
    expect(metrics).toMatch(/^tasksys_workers_expected 2$/m);
    await h.t.db.query(`DELETE FROM workers`);
  });

  it('reconcile re-enqueues running tasks with an expired lease, retrying ones past due and old queued ones, and nothing else', async () => {
    const before = (await h.counts()).outbox;
    const stranded = await createTask();
    expect((await sm.claim(stranded, 'gone-worker', 1)).applied).toBe(true); // lease of 1 ms: expired at once
    const retrying = await createTask();
    const c = await sm.claim(retrying, 'w', 30_000);
    expect(
      (await sm.failRetryable(retrying, c.task!.attempt, { code: 'X', message: 'again', retryable: true }, -1000, 'w'))
        .applied,
    ).toBe(true);
    const oldQueued = await createTask();
    await h.t.db.query(`UPDATE tasks SET updated_at = now() - interval '10 minutes' WHERE id = $1`, [oldQueued]);
    const freshQueued = await createTask();
    const leased = await createTask();
    await sm.claim(leased, 'live-worker', 60_000);
    await waitFor(
      'the outbox relayed',
      async () => (await h.t.db.query(`SELECT count(*)::int AS n FROM outbox`))[0].n === 0,
      10_000,
    );
    const written = (await h.counts()).outbox;

    const r = await h.call('POST', '/v1/admin/reconcile', { body: { olderThanMs: 120_000 } });
    expect([r.status, r.body]).toEqual([200, { running: 1, retrying: 1, queued: 1, total: 3 }]);
    expect((await h.counts()).outbox - written).toBe(3);
    const rows: { correlation_id: string }[] = await h.t.db.query(`SELECT correlation_id FROM outbox WHERE id > $1`, [
      written,
    ]);
    // The relay may already have published (and deleted) some; what is left must be among the three.
    for (const row of rows) expect([stranded, retrying, oldQueued]).toContain(row.correlation_id);
    expect(written - before).toBe(5); // the five creates; the fresh queued and the leased task got nothing more
    expect([await status(freshQueued), await status(leased)]).toEqual(['queued', 'running']);
    expect((await h.call('POST', '/v1/admin/reconcile', { body: { olderThanMs: -1 } })).status).toBe(400);
  });
});
