import { createHash } from 'node:crypto';
import { connect } from 'amqplib';
import { TaskStateMachine } from '@tasksys/tasks';
import { testRabbitmqUrl, waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from './testing/api-harness';

const TASK_KEYS = [
  'attempt',
  'callbackUrl',
  'createdAt',
  'error',
  'finishedAt',
  'id',
  'maxAttempts',
  'owner',
  'payload',
  'priority',
  'progress',
  'result',
  'runAt',
  'scheduleId',
  'scheduledFor',
  'startedAt',
  'status',
  'type',
  'updatedAt',
  'waiting',
];
const sleep = (ms: number, extra: Record<string, unknown> = {}) => ({ type: 'demo.sleep', payload: { ms, ...extra } });

describe('task HTTP API (real api over HTTP, real PostgreSQL and RabbitMQ)', () => {
  let h: ApiHarness;
  let alice: string;
  let bob: string;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    h = await startApi();
    alice = await h.newKey('alice');
    bob = await h.newKey('bob');
    sm = h.app.get(TaskStateMachine);
  });
  afterAll(() => h?.close());

  const create = (key: string, body: unknown, headers: Record<string, string> = {}) =>
    h.call('POST', '/v1/tasks', { key, body, headers });

  it('keeps idle keep-alive connections longer than proxies do (60 s), so none is closed under a sending client', () => {
    const server = h.app.getHttpServer();
    expect(server.keepAliveTimeout).toBe(65_000);
    expect(server.headersTimeout).toBeGreaterThan(server.keepAliveTimeout);
  });

  describe('auth', () => {
    it('answers 401 without a key, with a malformed header and with an unknown key', async () => {
      expect((await h.call('GET', '/v1/tasks', { key: null })).status).toBe(401);
      expect((await h.call('GET', '/v1/tasks', { key: null, headers: { authorization: 'Basic abc' } })).status).toBe(
        401,
      );
      const r = await h.call('GET', '/v1/tasks', { key: 'tsk_not-a-real-key' });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ statusCode: 401, error: 'Unauthorized', code: 'AUTH.UNAUTHENTICATED' });
    });

    it('answers 403 to a user key on admin routes', async () => {
      expect(
        (await h.call('POST', '/v1/admin/api-keys', { key: alice, body: { owner: 'eve', role: 'admin' } })).status,
      ).toBe(403);
      expect((await h.call('GET', '/v1/admin/reports', { key: alice })).status).toBe(403);
    });

    it('issues keys through the admin route and stores only their SHA-256', async () => {
      const r = await h.call('POST', '/v1/admin/api-keys', { body: { owner: 'carol', role: 'user' } });
      expect(r.status).toBe(201);
      expect(r.body).toEqual({ key: expect.stringMatching(/^tsk_/), owner: 'carol', role: 'user' });
      const rows = await h.t.db.query(`SELECT key_hash FROM api_keys WHERE owner = 'carol'`);
      expect(rows).toEqual([{ key_hash: createHash('sha256').update(r.body.key).digest('hex') }]);
      const raw = await h.t.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE key_hash = $1 OR owner = $1`, [
        r.body.key,
      ]);
      expect(raw[0].n).toBe(0);
      expect((await h.call('GET', '/v1/tasks', { key: r.body.key })).status).toBe(200);
    });

    it('revoked keys stop working', async () => {
      const key = await h.newKey('dave');
      await h.t.db.query(`UPDATE api_keys SET revoked_at = now() WHERE owner = 'dave'`);
      expect((await h.call('GET', '/v1/tasks', { key })).status).toBe(401);
    });
  });

  describe('create', () => {
    it('answers 201 with exactly the task JSON, queued and with its work message in the outbox', async () => {
      const r = await create(alice, sleep(10, { steps: 2 }));
      expect(r.status).toBe(201);
      expect(Object.keys(r.body).sort()).toEqual(TASK_KEYS);
      expect(r.body).toMatchObject({
        type: 'demo.sleep',
        status: 'queued',
        payload: { ms: 10, steps: 2 },
        result: null,
        error: null,
        attempt: 0,
        maxAttempts: 5,
        progress: { percent: 0, message: null },
        owner: 'alice',
        runAt: null,
        startedAt: null,
        finishedAt: null,
        // No worker runs in this test: the api says why the task waits.
        priority: 0,
        waiting: 'no worker serves demo.sleep',
      });
      expect(new Date(r.body.createdAt).toISOString()).toBe(r.body.createdAt);
      const events = await h.t.db.query(`SELECT from_status, to_status, actor FROM task_events WHERE task_id = $1`, [
        r.body.id,
      ]);
      expect(events).toEqual([{ from_status: null, to_status: 'queued', actor: 'owner:alice' }]);
    });

    it('start: false leaves it new until POST /start', async () => {
      const r = await create(alice, { ...sleep(1), start: false, maxAttempts: 2, timeoutMs: 5000, priority: 3 });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ status: 'new', maxAttempts: 2 });
      const outbox = await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [r.body.id]);
      expect(outbox[0].n).toBe(0);
    });

    it('same Idempotency-Key and body: 200 with the same task; another body: 409; key order does not matter', async () => {
      const first = await create(
        alice,
        { type: 'demo.sleep', payload: { ms: 5, steps: 1 } },
        { 'Idempotency-Key': 'k-1' },
      );
      expect(first.status).toBe(201);
      const again = await create(
        alice,
        { payload: { steps: 1, ms: 5 }, type: 'demo.sleep' },
        { 'Idempotency-Key': 'k-1' },
      );
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(first.body.id);
      const other = await create(alice, sleep(6), { 'Idempotency-Key': 'k-1' });
      expect(other.status).toBe(409);
      expect(other.body).toMatchObject({
        code: 'TASK.IDEMPOTENCY_CONFLICT',
        message: expect.stringContaining('Idempotency-Key'),
      });
      // Keys are per owner: bob's k-1 is another task.
      const bobs = await create(bob, sleep(6), { 'Idempotency-Key': 'k-1' });
      expect(bobs.status).toBe(201);
      expect(bobs.body.id).not.toBe(first.body.id);
    });

    it('20 concurrent identical idempotent creates make one task: one 201 and nineteen 200, all the same id', async () => {
      const body = sleep(42, { steps: 3 });
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => create(alice, body, { 'Idempotency-Key': 'burst-1' })),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([...Array(19).fill(200), 201]);
      expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
      const rows = await h.t.db.query(
        `SELECT count(*)::int AS n FROM tasks WHERE owner = 'alice' AND idempotency_key = 'burst-1'`,
      );
      expect(rows[0].n).toBe(1);
      const ob = await h.t.db.query(`SELECT count(*)::int AS n FROM task_events WHERE task_id = $1`, [
        answers[0].body.id,
      ]);
      expect(ob[0].n).toBe(1);
    });
  });

  describe('start, cancel, retry', () => {
    it('walks new -> queued -> cancelled -> queued with 202, repeats harmlessly, and names the status on 409', async () => {
      const { body: t } = await create(alice, { ...sleep(1), start: false });
      const started = await h.call('POST', `/v1/tasks/${t.id}/start`, { key: alice });
      expect([started.status, started.body.status]).toEqual([202, 'queued']);
      expect((await h.call('POST', `/v1/tasks/${t.id}/start`, { key: alice })).status).toBe(202);
      const cancelled = await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice });
      expect([cancelled.status, cancelled.body.status]).toEqual([202, 'cancelled']);
      expect(cancelled.body.finishedAt).not.toBeNull();
      expect((await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice })).status).toBe(202);
      const badStart = await h.call('POST', `/v1/tasks/${t.id}/start`, { key: alice });
      expect(badStart.status).toBe(409);
      expect(badStart.body).toMatchObject({
        code: 'TASK.INVALID_TRANSITION',
        message: 'cannot start a task that is cancelled',
      });
      const retried = await h.call('POST', `/v1/tasks/${t.id}/retry`, { key: alice });
      expect([retried.status, retried.body.status]).toEqual([202, 'queued']);
      expect((await h.call('POST', `/v1/tasks/${t.id}/retry`, { key: alice })).status).toBe(202);
      const events = await h.call('GET', `/v1/tasks/${t.id}/events`, { key: alice });
      expect(events.status).toBe(200);
      expect(events.body.items.map((e: { from: string | null; to: string }) => `${e.from}->${e.to}`)).toEqual([
        'null->new',
        'new->queued',
        'queued->cancelled',
        'cancelled->queued',
      ]);
      expect(events.body.items[1]).toMatchObject({ actor: 'owner:alice', attempt: 0, error: null });
    });

    it('answers 409 naming the status for cancel of a succeeded task and retry of a running one', async () => {
      const { body: t } = await create(alice, sleep(1));
      const claimed = await sm.claim(t.id, 'test-worker', 30_000);
      const retry = await h.call('POST', `/v1/tasks/${t.id}/retry`, { key: alice });
      expect([retry.status, retry.body.message]).toEqual([409, 'cannot retry a task that is running']);
      await sm.succeed(t.id, claimed.task!.attempt, { ok: true }, 'test-worker');
      const cancel = await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice });
      expect([cancel.status, cancel.body.message]).toEqual([409, 'cannot cancel a task that is succeeded']);
      expect((await h.call('GET', `/v1/tasks/${t.id}`, { key: alice })).body).toMatchObject({
        status: 'succeeded',
        result: { ok: true },
        progress: { percent: 100 },
      });
    });

    it("a cancelled queued task is never run: its work message (carrying the caller's trace) reaches the broker and the claim refuses it", async () => {
      const topology = await h.serveTypes(['demo.sleep']); // as a worker serving demo.sleep would
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const { body: t } = await create(alice, sleep(1), { traceparent });
      // The relay publishes the work message (and deletes the outbox row once confirmed).
      await waitFor(
        'the work message to be relayed',
        async () => {
          const [r] = await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [t.id]);
          return r.n === 0;
        },
        15_000,
      );
      expect((await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice })).status).toBe(202);
      // The message is still in the work queue; a worker taking it claims first, and the claim is refused.
      const conn = await connect(testRabbitmqUrl());
      try {
        const ch = await conn.createChannel();
        const found = await waitFor(
          'the work message in the queue',
          async () => {
            for (;;) {
              const m = await ch.get(topology.workQueue('demo.sleep'), { noAck: true });
              if (!m) return undefined;
              if (JSON.parse(m.content.toString()).taskId === t.id) return m;
            }
          },
          10_000,
        );
        expect(found.properties.correlationId).toBe(t.id);
        // W3C trace context: same trace, a new span for the task.
        expect(found.properties.headers?.['traceparent']).toMatch(
          /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/,
        );
        await ch.close();
      } finally {
        await conn.close();
      }
      const claim = await sm.claim(t.id, 'test-worker', 30_000);
      expect(claim).toMatchObject({ applied: false, task: { status: 'cancelled', attempt: 0 } });
      const after = await h.call('GET', `/v1/tasks/${t.id}`, { key: alice });
      expect(after.body).toMatchObject({ status: 'cancelled', attempt: 0, startedAt: null });
      const events = await h.t.db.query(`SELECT to_status FROM task_events WHERE task_id = $1 ORDER BY id`, [t.id]);
      expect(events.map((e: { to_status: string }) => e.to_status)).toEqual(['queued', 'cancelled']);
    });

    it('cancelling a running task writes a cancel signal for its worker to the outbox', async () => {
      const { body: t } = await create(alice, sleep(1));
      await sm.claim(t.id, 'test-worker', 30_000);
      const r = await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice });
      expect([r.status, r.body.status]).toEqual([202, 'cancelled']);
      const [ev] = await h.t.db.query(
        `SELECT from_status, to_status, actor FROM task_events WHERE task_id = $1 ORDER BY id DESC LIMIT 1`,
        [t.id],
      );
      expect(ev).toEqual({ from_status: 'running', to_status: 'cancelled', actor: 'owner:alice' });
      expect(await sm.heartbeat(t.id, 1, 'test-worker', 30_000)).toBe(false);
    });
  });

  describe('owners are isolated', () => {
    it("bob gets 404 for every route on alice's task, changes nothing, and never sees it listed", async () => {
      const { body: t } = await create(alice, { ...sleep(1), start: false });
      const before = await h.counts();
      for (const [method, suffix] of [
        ['GET', ''],
        ['GET', '/events'],
        ['GET', '/stream'],
        ['POST', '/start'],
        ['POST', '/cancel'],
        ['POST', '/retry'],
      ] as const) {
        const r = await h.call(method, `/v1/tasks/${t.id}${suffix}`, { key: bob });
        expect([`${method} ${suffix}`, r.status, r.body.code]).toEqual([`${method} ${suffix}`, 404, 'TASK.NOT_FOUND']);
      }
      const report = await h.call('POST', `/v1/tasks/${t.id}/reports`, { key: bob, body: { message: 'not mine' } });
      expect(report.status).toBe(404);
      expect(await h.counts()).toEqual(before);
      expect((await h.call('GET', `/v1/tasks/${t.id}`, { key: alice })).body.status).toBe('new');
      const bobsList = await h.call('GET', '/v1/tasks?limit=100', { key: bob });
      expect(bobsList.body.items.every((x: { owner: string }) => x.owner === 'bob')).toBe(true);
      expect((await h.call('GET', '/v1/tasks?owner=alice', { key: bob })).status).toBe(400);
    });

    it('admins see and act on any task', async () => {
      const { body: t } = await create(alice, { ...sleep(1), start: false });
      expect((await h.call('GET', `/v1/tasks/${t.id}`)).status).toBe(200);
      const list = await h.call('GET', '/v1/tasks?owner=alice&limit=100');
      expect(list.body.items.some((x: { id: string }) => x.id === t.id)).toBe(true);
      const r = await h.call('POST', `/v1/tasks/${t.id}/start`);
      expect(r.status).toBe(202);
      const [ev] = await h.t.db.query(`SELECT actor FROM task_events WHERE task_id = $1 ORDER BY id DESC LIMIT 1`, [
        t.id,
      ]);
      expect(ev.actor).toBe('admin:admin');
    });
  });

  describe('list', () => {
    it('pages newest first with an opaque cursor, no duplicates or gaps, and filters by status and type', async () => {
      const erin = await h.newKey('erin');
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await create(erin, { ...sleep(i), start: i % 2 === 0 })).body.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await h.call(
          'GET',
          `/v1/tasks?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          { key: erin },
        );
        expect(r.status).toBe(200);
        seen.push(...r.body.items.map((x) => x.id));
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(3);
      expect(seen).toEqual([...ids].reverse());
      const fresh = await h.call('GET', '/v1/tasks?status=new&limit=100', { key: erin });
      expect(fresh.body.items.map((x: { id: string }) => x.id)).toEqual([ids[5], ids[3], ids[1]]);
      expect((await h.call('GET', '/v1/tasks?type=demo.crash', { key: erin })).body).toEqual({
        items: [],
        nextCursor: null,
      });
    });
  });

  describe('live progress (SSE)', () => {
    it('streams the current state, then status and progress as a worker reports them, and closes after the terminal status', async () => {
      const { body: t } = await create(alice, sleep(100, { steps: 2 }));
      const res = await fetch(`${h.baseUrl}/v1/tasks/${t.id}/stream`, {
        headers: { authorization: `Bearer ${alice}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const events: { type: string; data: any }[] = [];
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      const readUntil = async (pred: () => boolean, what: string) => {
        const deadline = Date.now() + 10_000;
        while (!pred()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(events)}`);
          const { value, done } = await reader.read();
          if (done) return true;
          buffer += decoder.decode(value, { stream: true });
          let sep: number;
          while ((sep = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, sep);
            buffer = buffer.slice(sep + 2);
            const type = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (type && data) events.push({ type, data: JSON.parse(data) });
          }
        }
        return false;
      };
      await readUntil(() => events.length >= 1, 'the first event');
      expect(events[0]).toMatchObject({ type: 'status', data: { id: t.id, status: 'queued' } });

      // Act as the worker, through the real state machine against the real database.
      const claimed = await sm.claim(t.id, 'test-worker', 30_000);
      const token = claimed.task!.attempt;
      await readUntil(() => events.some((e) => e.data.status === 'running'), 'running');
      await sm.progress(t.id, token, 'test-worker', 50, 'half way', 30_000);
      await readUntil(() => events.some((e) => e.type === 'progress' && e.data.percent === 50), 'progress 50');
      await sm.succeed(t.id, token, { slept: 100 }, 'test-worker');
      const ended = await readUntil(() => false, 'the end of the stream').catch(() => false);
      expect(ended).toBe(true);
      expect(events.map((e) => `${e.type}:${e.data.status ?? e.data.percent}`)).toEqual([
        'status:queued',
        'status:running',
        'progress:50',
        'status:succeeded',
      ]);
      expect(events[2].data).toEqual({ id: t.id, percent: 50, message: 'half way' });
      expect(events[3].data).toMatchObject({ status: 'succeeded', result: { slept: 100 }, progress: { percent: 100 } });
    });

    it('a stream of a finished task sends its state and closes', async () => {
      const { body: t } = await create(alice, { ...sleep(1), start: false });
      await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice });
      const res = await fetch(`${h.baseUrl}/v1/tasks/${t.id}/stream`, {
        headers: { authorization: `Bearer ${alice}` },
      });
      const text = await res.text();
      expect(text).toMatch(/^event: status\nid: \d+\ndata: .*"status":"cancelled"/m);
      expect(text.match(/^event:/gm)).toHaveLength(1);
    });
  });

  describe('reports', () => {
    it('a user reports a problem with their task; admins list reports newest first', async () => {
      const { body: t } = await create(alice, sleep(1));
      const r = await h.call('POST', `/v1/tasks/${t.id}/reports`, { key: alice, body: { message: 'it is slow' } });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ taskId: t.id, owner: 'alice', message: 'it is slow' });
      await h.call('POST', `/v1/tasks/${t.id}/reports`, { key: alice, body: { message: 'still slow' } });
      const page1 = await h.call('GET', '/v1/admin/reports?limit=1');
      expect(page1.body.items.map((x: { message: string }) => x.message)).toEqual(['still slow']);
      const page2 = await h.call(
        'GET',
        `/v1/admin/reports?limit=1&cursor=${encodeURIComponent(page1.body.nextCursor)}`,
      );
      expect(page2.body.items.map((x: { message: string }) => x.message)).toEqual(['it is slow']);
    });
  });

  describe('delayed start (runAt, delayMs)', () => {
    const outboxRows = async (id: string) =>
      (await h.t.db.query(`SELECT count(*)::int AS n FROM outbox WHERE correlation_id = $1`, [id]))[0].n;

    it('answers 201 with status scheduled and runAt for delayMs and for a runAt with an offset; nothing is sent yet', async () => {
      const delayed = await create(alice, { ...sleep(1), delayMs: 60_000 });
      expect(delayed.status).toBe(201);
      expect(delayed.body).toMatchObject({ status: 'scheduled', waiting: null, startedAt: null });
      expect(Date.parse(delayed.body.runAt) - Date.parse(delayed.body.createdAt)).toBe(60_000);
      expect(await outboxRows(delayed.body.id)).toBe(0);
      const at = new Date(Date.now() + 3_600_000);
      // The same instant written in another zone: +02:00.
      const local = new Date(at.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
      const scheduled = await create(alice, { ...sleep(1), runAt: local });
      expect(scheduled.status).toBe(201);
      expect(scheduled.body).toMatchObject({ status: 'scheduled', runAt: at.toISOString() });
      const got = await h.call('GET', `/v1/tasks/${scheduled.body.id}`, { key: alice });
      expect(got.body).toMatchObject({ status: 'scheduled', runAt: at.toISOString() });
      const listed = await h.call('GET', '/v1/tasks?status=scheduled', { key: alice });
      expect(listed.body.items.map((x: { id: string }) => x.id)).toContain(scheduled.body.id);
    });

    it('starts a task whose runAt is past (or delayMs 0) at once: queued with its message', async () => {
      // Outbox rows ever written (the relay may already have sent and deleted this one).
      const written = async () => (await h.counts()).outbox;
      const before = await written();
      const past = await create(alice, { ...sleep(1), runAt: '2020-01-01T00:00:00Z' });
      expect([past.status, past.body.status, past.body.runAt]).toEqual([201, 'queued', '2020-01-01T00:00:00.000Z']);
      expect((await written()) - before).toBe(1);
      const now = await create(alice, { ...sleep(1), delayMs: 0 });
      expect([now.status, now.body.status]).toEqual([201, 'queued']);
    });

    it('answers 400 naming runAt or delayMs for bad values, too far ahead, and both given, writing nothing', async () => {
      const before = await h.counts();
      const yearAndADay = new Date(Date.now() + 367 * 86_400_000).toISOString();
      const bad: [Record<string, unknown>, string][] = [
        [{ runAt: '2026-12-01T22:00:00' }, 'runAt'], // no offset
        [{ runAt: '2026-12-01' }, 'runAt'],
        [{ runAt: 'tomorrow' }, 'runAt'],
        [{ runAt: '2026-13-45T25:00:00Z' }, 'runAt'],
        [{ runAt: 1764626400000 }, 'runAt'],
        [{ runAt: yearAndADay }, 'runAt'],
        [{ delayMs: -1 }, 'delayMs'],
        [{ delayMs: 1.5 }, 'delayMs'],
        [{ delayMs: '1000' }, 'delayMs'],
        [{ delayMs: 367 * 86_400_000 }, 'delayMs'],
        [{ runAt: new Date(Date.now() + 60_000).toISOString(), delayMs: 1000 }, 'runAt'],
      ];
      for (const [extra, field] of bad) {
        const r = await create(alice, { ...sleep(1), ...extra });
        expect([JSON.stringify(extra), r.status, r.body.code, r.body.field]).toEqual([
          JSON.stringify(extra),
          400,
          'REQUEST.INVALID',
          field,
        ]);
        expect(r.body.message).toContain(field);
      }
      const both = await create(alice, { ...sleep(1), runAt: new Date().toISOString(), delayMs: 1 });
      expect(both.body.message).toMatch(/runAt and delayMs: give one of them, not both/);
      expect(await h.counts()).toEqual(before);
    });

    it('cancels a scheduled task: cancelled, never queued, no message', async () => {
      const { body: t } = await create(alice, { ...sleep(1), delayMs: 60_000 });
      const cancelled = await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice });
      expect([cancelled.status, cancelled.body.status]).toEqual([202, 'cancelled']);
      expect((await h.call('POST', `/v1/tasks/${t.id}/cancel`, { key: alice })).status).toBe(202);
      const events = await h.call('GET', `/v1/tasks/${t.id}/events`, { key: alice });
      expect(events.body.items.map((e: { from: string | null; to: string }) => `${e.from}->${e.to}`)).toEqual([
        'null->scheduled',
        'scheduled->cancelled',
      ]);
      expect(await outboxRows(t.id)).toBe(0);
    });

    it('start of a new task due later schedules it; a repeated start answers 202 too', async () => {
      const { body: t } = await create(alice, { ...sleep(1), start: false, delayMs: 60_000 });
      expect(t).toMatchObject({ status: 'new', runAt: expect.any(String) });
      const started = await h.call('POST', `/v1/tasks/${t.id}/start`, { key: alice });
      expect([started.status, started.body.status]).toEqual([202, 'scheduled']);
      expect((await h.call('POST', `/v1/tasks/${t.id}/start`, { key: alice })).status).toBe(202);
    });

    it('takes runAt and delayMs per batch item, naming the index of a bad one', async () => {
      const at = new Date(Date.now() + 3_600_000).toISOString();
      const r = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: [{ ...sleep(1), delayMs: 60_000 }, sleep(2), { ...sleep(3), runAt: at }] },
      });
      expect(r.status).toBe(201);
      expect(r.body.items.map((x: { status: string; runAt: string | null }) => [x.status, x.runAt])).toEqual([
        ['scheduled', expect.any(String)],
        ['queued', null],
        ['scheduled', at],
      ]);
      const before = await h.counts();
      const bad = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: [sleep(1), { ...sleep(2), runAt: at, delayMs: 5 }] },
      });
      expect([bad.status, bad.body.field]).toEqual([400, 'tasks[1].runAt']);
      const badDelay = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: [sleep(1), sleep(1), { ...sleep(2), delayMs: -5 }] },
      });
      expect([badDelay.status, badDelay.body.field]).toEqual([400, 'tasks[2].delayMs']);
      expect(await h.counts()).toEqual(before);
    });

    it('documents runAt and delayMs in the OpenAPI document', async () => {
      const doc = await h.call('GET', '/docs-json', { key: null });
      const schemas = doc.body.components.schemas;
      // The submit body is one schema per task type (CreateTaskRequest, a oneOf), each with these fields.
      expect(schemas.DemoSleepTaskRequest.properties).toMatchObject({
        runAt: { type: 'string', format: 'date-time' },
        delayMs: { type: 'number', minimum: 0 },
      });
      expect(schemas.TaskView.properties.runAt).toMatchObject({ format: 'date-time', nullable: true });
      expect(schemas.TaskView.properties.status.enum).toContain('scheduled');
    });
  });

  describe('batch', () => {
    it('creates tasks in order in one go, with the same events as single creates', async () => {
      const r = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: [sleep(1), { ...sleep(2), start: false }, sleep(3)] },
      });
      expect(r.status).toBe(201);
      expect(
        r.body.items.map((x: { payload: { ms: number }; status: string }) => `${x.payload.ms}:${x.status}`),
      ).toEqual(['1:queued', '2:new', '3:queued']);
      const single = (await create(bob, sleep(4))).body;
      // (The outbox rows are compared in create-task-batch.command.int-spec.ts, where no relay deletes them.)
      const events = (id: string) =>
        h.t.db.query(`SELECT from_status, to_status, attempt, actor, error FROM task_events WHERE task_id = $1`, [id]);
      expect(await events(r.body.items[0].id)).toEqual(await events(single.id));
    });

    it('rejects the whole batch naming the index and field of the first bad item, writing nothing', async () => {
      const before = await h.counts();
      const r = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: {
          tasks: [sleep(1), sleep(2), { type: 'demo.sleep', payload: { ms: -1 } }, { type: 'nope', payload: {} }],
        },
      });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({
        field: 'tasks[2].payload.ms',
        message: expect.stringContaining('tasks[2].payload.ms'),
      });
      const big = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: Array.from({ length: 1001 }, () => sleep(1)) },
      });
      expect([big.status, big.body.field]).toEqual([400, 'tasks']);
      expect(await h.counts()).toEqual(before);
    });

    it('accepts 1000 tasks', async () => {
      const r = await h.call('POST', '/v1/tasks/batch', {
        key: bob,
        body: { tasks: Array.from({ length: 1000 }, (_, i) => sleep(i)) },
      });
      expect(r.status).toBe(201);
      expect(r.body.items).toHaveLength(1000);
      expect(r.body.items[999].payload).toEqual({ ms: 999 });
    });
  });

  describe('operations', () => {
    it('health: live at once, ready once the database and the broker are', async () => {
      expect((await h.call('GET', '/health/live', { key: null })).status).toBe(200);
      const ready = await waitFor(
        'readiness',
        async () => {
          const r = await h.call('GET', '/health/ready', { key: null });
          return r.status === 200 ? r : undefined;
        },
        15_000,
      );
      expect(ready.body.details).toEqual({ database: { status: 'up' }, broker: { status: 'up' } });
    });

    it('metrics: HTTP counters and histograms by route, live tasks by state, outbox backlog', async () => {
      const r = await h.call('GET', '/metrics', { key: null });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/plain');
      expect(r.text).toMatch(/^http_requests_total\{method="POST",route="\/v1\/tasks",status="201"\} \d+$/m);
      expect(r.text).toMatch(/^http_request_duration_seconds_bucket\{.*route="\/v1\/tasks\/:id".*\} \d+$/m);
      expect(r.text).toMatch(/^tasksys_tasks\{state="queued"\} \d+$/m);
      expect(r.text).toMatch(/^tasksys_outbox_backlog \d+$/m);
      expect(r.text).toMatch(/^process_cpu_seconds_total /m);
      const [row] = await h.t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'new'`);
      expect(r.text).toContain(`tasksys_tasks{state="new"} ${row.n}\n`);
    });

    it('the OpenAPI document lists every route the app serves, with bearer auth; /docs serves the UI', async () => {
      const doc = await h.call('GET', '/docs-json', { key: null });
      expect(doc.status).toBe(200);
      const documented = new Set<string>();
      for (const [path, ops] of Object.entries(doc.body.paths as Record<string, Record<string, unknown>>)) {
        for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
      }
      // (the docs' UI and the console's files are static routes)
      const served = h.routes.filter((r) => !r.includes('/docs') && !r.includes('/console'));
      expect([...served].sort()).toEqual([
        'DELETE /v1/schedules/:id',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
        'GET /v1/admin/dead-letters',
        'GET /v1/admin/owners/:owner/limits',
        'GET /v1/admin/queues',
        'GET /v1/admin/reports',
        'GET /v1/admin/unrouted',
        'GET /v1/admin/workers',
        'GET /v1/schedules',
        'GET /v1/schedules/:id',
        'GET /v1/tasks',
        'GET /v1/tasks/:id',
        'GET /v1/tasks/:id/deliveries',
        'GET /v1/tasks/:id/events',
        'GET /v1/tasks/:id/stream',
        'GET /v1/webhooks/failing-endpoints',
        'PATCH /v1/schedules/:id',
        'POST /v1/admin/api-keys',
        'POST /v1/admin/dead-letters/redrive',
        'POST /v1/admin/reconcile',
        'POST /v1/admin/unrouted/redrive',
        'POST /v1/schedules',
        'POST /v1/tasks',
        'POST /v1/tasks/:id/cancel',
        'POST /v1/tasks/:id/reports',
        'POST /v1/tasks/:id/retry',
        'POST /v1/tasks/:id/start',
        'POST /v1/tasks/:id/stream-token',
        'POST /v1/tasks/batch',
        'POST /v1/webhooks/secret',
        'PUT /v1/admin/owners/:owner/limits',
      ]);
      expect(served.filter((r: string) => !documented.has(r))).toEqual([]);
      expect(doc.body.components.securitySchemes).toHaveProperty('bearer');
      expect(doc.body.paths['/v1/tasks'].post.security).toEqual([{ bearer: [] }]);
      const ui = await h.call('GET', '/docs', { key: null });
      expect([ui.status, ui.headers.get('content-type')]).toEqual([200, expect.stringContaining('text/html')]);
    });
  });
});
