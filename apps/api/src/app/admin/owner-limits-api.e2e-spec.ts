import { TaskStateMachine } from '@tasksys/tasks';
import { type ApiHarness, startApi } from '../../testing/api-harness';

const sleepTask = (ms = 10) => ({ type: 'demo.sleep', payload: { ms } });
const ROUTE = (owner: string) => `/v1/admin/owners/${owner}/limits`;

describe('owner quotas over HTTP (real api, PostgreSQL and RabbitMQ)', () => {
  let h: ApiHarness;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    h = await startApi();
    sm = h.app.get(TaskStateMachine);
    // demo.sleep's queue exists, as a worker serving it would declare it: the relay's publishes are routed.
    await h.serveTypes(['demo.sleep']);
  });
  afterAll(() => h?.close());

  const submit = (key: string, body: unknown = sleepTask()) => h.call('POST', '/v1/tasks', { key, body });

  it('answers 403 to a user key and 401 without one, on both routes', async () => {
    const user = await h.newKey('mallory');
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { maxRunning: 1 }],
    ] as const) {
      expect((await h.call(method, ROUTE('mallory'), { key: user, body })).status).toBe(403);
      expect((await h.call(method, ROUTE('mallory'), { key: null, body })).status).toBe(401);
    }
    expect((await h.call('GET', ROUTE('mallory'))).body).toMatchObject({ maxRunning: null, maxQueued: null });
  });

  it('refuses bad limits with 400 naming the field, and changes nothing', async () => {
    const bad: [unknown, string][] = [
      [{ maxRunning: 0 }, 'maxRunning'],
      [{ maxRunning: 1.5 }, 'maxRunning'],
      [{ maxRunning: '2' }, 'maxRunning'],
      [{ maxRunning: -3 }, 'maxRunning'],
      [{ maxQueued: 0 }, 'maxQueued'],
      [{ maxQueued: true }, 'maxQueued'],
      [{ maxQueued: 10_000_000 }, 'maxQueued'],
      [{ maxQueue: 5 }, 'maxQueue'],
    ];
    for (const [body, field] of bad) {
      const r = await h.call('PUT', ROUTE('carol'), { body });
      expect([JSON.stringify(body), r.status, r.body.code, r.body.field]).toEqual([
        JSON.stringify(body),
        400,
        'REQUEST.INVALID',
        field,
      ]);
      expect(r.body.message).toMatch(new RegExp(`^${field}`));
    }
    const badOwner = await h.call('PUT', ROUTE('-not-an-owner'), { body: { maxRunning: 1 } });
    expect([badOwner.status, badOwner.body.field]).toEqual([400, 'owner']);
    expect((await h.call('GET', ROUTE('carol'))).body).toMatchObject({ maxRunning: null, maxQueued: null });
  });

  it('sets, reads and clears limits: a field left out stays, null removes it', async () => {
    const put = await h.call('PUT', ROUTE('dave'), { body: { maxRunning: 2 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ owner: 'dave', maxRunning: 2, maxQueued: null, running: 0, queued: 0, woken: 0 });
    expect((await h.call('PUT', ROUTE('dave'), { body: { maxQueued: 7 } })).body).toMatchObject({
      maxRunning: 2,
      maxQueued: 7,
    });
    const got = await h.call('GET', ROUTE('dave'));
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ owner: 'dave', maxRunning: 2, maxQueued: 7, running: 0, queued: 0, held: 0 });
    expect(Date.parse(got.body.updatedAt)).not.toBeNaN();
    expect((await h.call('PUT', ROUTE('dave'), { body: { maxRunning: null } })).body).toMatchObject({
      maxRunning: null,
      maxQueued: 7,
    });
    expect((await h.call('PUT', ROUTE('dave'), { body: { maxQueued: null } })).body).toMatchObject({
      maxRunning: null,
      maxQueued: null,
      updatedAt: null,
    });
  });

  it('answers 429 with Retry-After naming maxQueued once the owner is at it, writing nothing', async () => {
    const key = await h.newKey('erin');
    await h.call('PUT', ROUTE('erin'), { body: { maxQueued: 3 } });
    for (let i = 0; i < 3; i++) expect((await submit(key)).status).toBe(201);
    const before = await h.counts();
    const r = await submit(key);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.body).toMatchObject({ statusCode: 429, code: 'OWNER.MAX_QUEUED' });
    expect(r.body.message).toContain('owner erin is at its maxQueued 3 (3 non-terminal tasks)');
    // With an Idempotency-Key too; and nothing at all was written.
    const keyed = await h.call('POST', '/v1/tasks', { key, body: sleepTask(), headers: { 'Idempotency-Key': 'x1' } });
    expect([keyed.status, keyed.body.code]).toEqual([429, 'OWNER.MAX_QUEUED']);
    expect(await h.counts()).toEqual(before);
    // Other owners are not affected.
    expect((await submit(await h.newKey('frank'))).status).toBe(201);
    // One finishes (cancelled is terminal): room for exactly one more.
    const [oneId] = (await h.t.db.query(`SELECT id FROM tasks WHERE owner = 'erin' LIMIT 1`)).map(
      (x: { id: string }) => x.id,
    );
    expect((await h.call('POST', `/v1/tasks/${oneId}/cancel`, { key })).status).toBe(202);
    expect((await submit(key)).status).toBe(201);
    expect((await submit(key)).status).toBe(429);
    await expect(h.call('GET', ROUTE('erin'))).resolves.toMatchObject({ body: { maxQueued: 3, queued: 3 } });
  });

  it('refuses a whole batch that would cross maxQueued (nothing written) and takes one that fits', async () => {
    const key = await h.newKey('gina');
    await h.call('PUT', ROUTE('gina'), { body: { maxQueued: 5 } });
    expect((await h.call('POST', '/v1/tasks/batch', { key, body: { tasks: [sleepTask(), sleepTask()] } })).status).toBe(
      201,
    );
    const before = await h.counts();
    const over = await h.call('POST', '/v1/tasks/batch', {
      key,
      body: { tasks: [sleepTask(), sleepTask(), sleepTask(), sleepTask()] },
    });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('5');
    expect(over.body.code).toBe('OWNER.MAX_QUEUED');
    expect(over.body.message).toContain('owner gina has 2 non-terminal tasks: 4 more would pass its maxQueued 5');
    expect(await h.counts()).toEqual(before);
    const fits = await h.call('POST', '/v1/tasks/batch', {
      key,
      body: { tasks: [sleepTask(), sleepTask(), sleepTask()] },
    });
    expect([fits.status, fits.body.items.length]).toEqual([201, 3]);
  });

  it('shows why a held task waits, naming the limit; raising the limit sets it free at once', async () => {
    const key = await h.newKey('hank');
    await h.call('PUT', ROUTE('hank'), { body: { maxRunning: 1 } });
    const a = (await submit(key, sleepTask(60_000))).body.id as string;
    const b = (await submit(key, sleepTask(60_000))).body.id as string;
    // Claimed as a worker would (no worker runs here).
    expect((await sm.claim(a, 'test-worker', 60_000)).applied).toBe(true);
    expect((await sm.claim(b, 'test-worker', 60_000)).applied).toBe(false);
    const held = await h.call('GET', `/v1/tasks/${b}`, { key });
    expect(held.body).toMatchObject({ status: 'queued', waiting: 'owner hank is at maxRunning 1' });
    const listed = await h.call('GET', '/v1/tasks?status=queued', { key });
    expect(listed.body.items.find((x: { id: string }) => x.id === b).waiting).toBe('owner hank is at maxRunning 1');
    expect((await h.call('GET', ROUTE('hank'))).body).toMatchObject({ maxRunning: 1, running: 1, queued: 2, held: 1 });

    const raised = await h.call('PUT', ROUTE('hank'), { body: { maxRunning: 2 } });
    expect(raised.body).toMatchObject({ maxRunning: 2, held: 0, woken: 1 });
    // Queued with its message on the way; no worker runs in this test, and the view says only that now.
    expect((await h.call('GET', `/v1/tasks/${b}`, { key })).body).toMatchObject({
      status: 'queued',
      waiting: 'no worker serves demo.sleep',
    });
  });

  it('lists both routes in the OpenAPI document with their request, answers and errors', async () => {
    const doc = await h.call('GET', '/docs-json', { key: null });
    const path = doc.body.paths['/v1/admin/owners/{owner}/limits'];
    expect(Object.keys(path).sort()).toEqual(['get', 'put']);
    expect(Object.keys(path.put.responses).sort()).toEqual(['200', '400', '401', '403']);
    expect(path.put.requestBody.content['application/json'].schema.$ref).toMatch(/OwnerLimitsRequestDto$/);
    expect(doc.body.components.schemas.OwnerLimitsRequestDto.properties).toMatchObject({
      maxRunning: { type: 'integer', minimum: 1, nullable: true },
      maxQueued: { type: 'integer', minimum: 1, nullable: true },
    });
    expect(Object.keys(doc.body.paths['/v1/tasks'].post.responses)).toContain('429');
    expect(Object.keys(doc.body.paths['/v1/tasks/batch'].post.responses)).toContain('429');
  });
});
