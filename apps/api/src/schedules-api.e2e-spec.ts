import { waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from './testing/api-harness';

const SLEEP = { type: 'demo.sleep', payload: { ms: 1 } };
const schedule = (extra: Record<string, unknown> = {}) => ({
  name: `s-${Math.random().toString(36).slice(2)}`,
  cron: '0 3 * * *',
  task: SLEEP,
  ...extra,
});

describe('schedule HTTP API (real api over HTTP, real PostgreSQL and RabbitMQ)', () => {
  let h: ApiHarness;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    h = await startApi();
    alice = await h.newKey('alice');
    bob = await h.newKey('bob');
  }, 60_000);
  afterAll(() => h?.close(), 60_000);

  const rows = async (sql: string, params: unknown[] = []) => h.t.db.query(sql, params);

  it('creates a schedule: 201 with its id and first fire time, the task with the type’s defaults', async () => {
    const before = Date.now();
    const r = await h.call('POST', '/v1/schedules', {
      key: alice,
      body: schedule({ name: 'nightly', cron: '30 2 * * *', timezone: 'Europe/Berlin' }),
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      owner: 'alice',
      name: 'nightly',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      overlap: 'allow',
      paused: false,
      task: { type: 'demo.sleep', payload: { ms: 1 }, priority: 0, maxAttempts: 5, timeoutMs: 3_900_000 },
      lastFiredAt: null,
      firedCount: 0,
      skippedCount: 0,
      missedCount: 0,
    });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const next = new Date(r.body.nextRunAt).getTime();
    expect(next).toBeGreaterThan(before);
    expect(next).toBeLessThanOrEqual(before + 25 * 3_600_000);
    // 02:30 on the wall clock of Berlin: 00:30 or 01:30 UTC.
    expect(
      new Date(next).toLocaleString('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }),
    ).toBe('02:30');
    expect((await h.call('GET', `/v1/schedules/${r.body.id}`, { key: alice })).body).toEqual(r.body);
  });

  it.each([
    [{ cron: '* * * *' }, 'cron'],
    [{ cron: '@daily' }, 'cron'],
    [{ cron: '0 0 * * * * 2030' }, 'cron'],
    [{ cron: '61 * * * *' }, 'cron'],
    [{ cron: 5 }, 'cron'],
    [{ timezone: 'Mars/Olympus' }, 'timezone'],
    [{ timezone: '+02:00' }, 'timezone'],
    [{ task: { type: 'demo.nope', payload: {} } }, 'task.type'],
    [{ task: { type: 'demo.sleep', payload: { ms: -1 } } }, 'task.payload.ms'],
    [{ task: { type: 'demo.sleep', payload: { ms: 1, what: 1 } } }, 'task.payload.what'],
    [{ task: { type: 'demo.sleep' } }, 'task.payload'],
    [{ task: { ...SLEEP, maxAttempts: 0 } }, 'task.maxAttempts'],
    [{ task: { ...SLEEP, timeoutMs: 999_999_999 } }, 'task.timeoutMs'],
    [{ task: 'demo.sleep' }, 'task'],
    [{ overlap: 'sometimes' }, 'overlap'],
    [{ name: '' }, 'name'],
    [{ paused: true }, 'paused'],
  ])('answers 400 naming the field for %j, writing nothing', async (extra, field) => {
    const r = await h.call('POST', '/v1/schedules', { key: alice, body: schedule(extra) });
    expect([r.status, r.body.code, r.body.field]).toEqual([400, 'REQUEST.INVALID', field]);
    expect(r.body.message).toContain(field);
    expect(await rows(`SELECT 1 FROM schedules WHERE owner = 'alice' AND name = $1`, [schedule(extra).name])).toEqual(
      [],
    );
  });

  it('a name is unique per owner (409), another owner may use it', async () => {
    expect((await h.call('POST', '/v1/schedules', { key: alice, body: schedule({ name: 'dup' }) })).status).toBe(201);
    const again = await h.call('POST', '/v1/schedules', { key: alice, body: schedule({ name: 'dup' }) });
    expect([again.status, again.body.code, again.body.field]).toEqual([409, 'SCHEDULE.NAME_TAKEN', 'name']);
    expect((await h.call('POST', '/v1/schedules', { key: bob, body: schedule({ name: 'dup' }) })).status).toBe(201);
  });

  it('is owner-scoped: others get 404 for every route and never see it; admins see and manage all', async () => {
    const mine = (await h.call('POST', '/v1/schedules', { key: alice, body: schedule() })).body;
    const path = `/v1/schedules/${mine.id}`;
    for (const [method, body] of [['GET'], ['PATCH', { paused: true }], ['DELETE']] as const) {
      const r = await h.call(method, path, { key: bob, body });
      expect([method, r.status, r.body?.code]).toEqual([method, 404, 'SCHEDULE.NOT_FOUND']);
    }
    const bobs = (await h.call('GET', '/v1/schedules?limit=100', { key: bob })).body.items;
    expect(bobs.every((s: { owner: string }) => s.owner === 'bob')).toBe(true);
    expect((await h.call('GET', '/v1/schedules?owner=alice', { key: bob })).status).toBe(400);
    const all = (await h.call('GET', '/v1/schedules?limit=100')).body.items.map((s: { owner: string }) => s.owner);
    expect(new Set(all)).toEqual(new Set(['alice', 'bob']));
    const alices = (await h.call('GET', '/v1/schedules?owner=alice&limit=100')).body.items;
    expect(alices.map((s: { id: string }) => s.id)).toContain(mine.id);
    expect(alices.every((s: { owner: string }) => s.owner === 'alice')).toBe(true);
    expect((await h.call('PATCH', path, { body: { paused: true } })).body.paused).toBe(true);
    expect((await h.call('GET', path)).status).toBe(200);
    expect((await h.call('GET', '/v1/schedules/not-a-uuid', { key: alice })).body.field).toBe('id');
  });

  it('pages with a keyset cursor, newest first', async () => {
    const carol = await h.newKey('carol');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await h.call('POST', '/v1/schedules', { key: carol, body: schedule() })).body.id);
    const first = await h.call('GET', '/v1/schedules?limit=3', { key: carol });
    const second = await h.call('GET', `/v1/schedules?limit=3&cursor=${first.body.nextCursor}`, { key: carol });
    expect([...first.body.items, ...second.body.items].map((s: { id: string }) => s.id)).toEqual(ids.reverse());
    expect(second.body.nextCursor).toBeNull();
    expect((await h.call('GET', '/v1/schedules?cursor=nope', { key: carol })).body.field).toBe('cursor');
  });

  it('PATCH pauses (no next run), resumes from now, recomputes the next run for a new cron or zone, merges the task', async () => {
    const s = (await h.call('POST', '/v1/schedules', { key: alice, body: schedule({ cron: '0 3 * * *' }) })).body;
    const path = `/v1/schedules/${s.id}`;
    const paused = await h.call('PATCH', path, { key: alice, body: { paused: true } });
    expect([paused.status, paused.body.paused, paused.body.nextRunAt]).toEqual([200, true, null]);
    const resumed = await h.call('PATCH', path, { key: alice, body: { paused: false } });
    expect(resumed.body.paused).toBe(false);
    expect(new Date(resumed.body.nextRunAt).getUTCHours()).toBe(3);

    const minutely = await h.call('PATCH', path, { key: alice, body: { cron: '*/10 * * * * *' } });
    expect(minutely.status).toBe(200);
    const next = new Date(minutely.body.nextRunAt);
    expect(next.getUTCSeconds() % 10).toBe(0);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(10_000);

    const zoned = await h.call('PATCH', path, { key: alice, body: { cron: '0 9 * * *', timezone: 'Asia/Kolkata' } });
    expect(new Date(zoned.body.nextRunAt).toISOString()).toMatch(/T03:30:00\.000Z$/);

    const task = await h.call('PATCH', path, { key: alice, body: { task: { payload: { ms: 7 }, priority: 4 } } });
    expect(task.body.task).toEqual({
      type: 'demo.sleep',
      payload: { ms: 7 },
      priority: 4,
      maxAttempts: 5,
      timeoutMs: 3_900_000,
    });

    for (const [body, field] of [
      [{ cron: '* *' }, 'cron'],
      [{ timezone: 'Nowhere/City' }, 'timezone'],
      [{ task: { payload: { ms: 'x' } } }, 'task.payload.ms'],
      [{ task: { type: 'demo.nope' } }, 'task.type'],
      [{ name: 'renamed' }, 'name'],
    ] as const) {
      const r = await h.call('PATCH', path, { key: alice, body });
      expect([JSON.stringify(body), r.status, r.body.field]).toEqual([JSON.stringify(body), 400, field]);
    }
    // Nothing of the refused patches was applied.
    expect((await h.call('GET', path, { key: alice })).body).toMatchObject({
      cron: '0 9 * * *',
      timezone: 'Asia/Kolkata',
      task: { payload: { ms: 7 } },
    });
  });

  it('fires: each fire time one task with scheduleId and scheduledFor, listed by GET /v1/tasks?scheduleId=; DELETE stops it and keeps the runs', async () => {
    const s = (
      await h.call('POST', '/v1/schedules', { key: alice, body: schedule({ cron: '* * * * * *', task: SLEEP }) })
    ).body;
    const runs = async (key = alice) =>
      (await h.call('GET', `/v1/tasks?scheduleId=${s.id}&limit=100`, { key })).body.items as Record<string, any>[];
    await waitFor('three fires', async () => (await runs()).length >= 3, 15_000, 100);
    const listed = await runs();
    for (const task of listed) {
      expect(task).toMatchObject({ scheduleId: s.id, owner: 'alice', type: 'demo.sleep', payload: { ms: 1 } });
      expect(task.runAt).toBe(task.scheduledFor);
      expect(new Date(task.scheduledFor).getUTCMilliseconds()).toBe(0);
    }
    const times = listed.map((t) => new Date(t.scheduledFor).getTime());
    expect(new Set(times).size).toBe(times.length);
    // Newest first, each a second after the one before.
    for (let i = 1; i < times.length; i++) expect(times[i - 1] - times[i]).toBe(1000);
    // Bob sees none of alice's runs, even by asking for the schedule.
    expect(await runs(bob)).toEqual([]);
    expect((await h.call('GET', '/v1/tasks?scheduleId=nope', { key: alice })).body.field).toBe('scheduleId');
    const view = (await h.call('GET', `/v1/schedules/${s.id}`, { key: alice })).body;
    expect(view.firedCount).toBeGreaterThanOrEqual(3);
    expect(view.lastTaskId).not.toBeNull();

    expect((await h.call('DELETE', `/v1/schedules/${s.id}`, { key: alice })).status).toBe(204);
    expect((await h.call('GET', `/v1/schedules/${s.id}`, { key: alice })).status).toBe(404);
    expect((await h.call('DELETE', `/v1/schedules/${s.id}`, { key: alice })).status).toBe(404);
    const [{ last }] = await rows(`SELECT max(scheduled_for) AS last FROM tasks WHERE schedule_id = $1`, [s.id]);
    const deletedAt = Date.now();
    // No fire after the delete: a per-second schedule would have fired twice in this window.
    await new Promise((r) => setTimeout(r, 2500));
    const [{ last: after, n }] = await rows(
      `SELECT max(scheduled_for) AS last, count(*)::int AS n FROM tasks WHERE schedule_id = $1`,
      [s.id],
    );
    expect(after).toEqual(last);
    expect(last.getTime()).toBeLessThan(deletedAt);
    expect(n).toBeGreaterThanOrEqual(3); // the runs stay
  }, 40_000);

  it('lists the new routes and fields in the OpenAPI document', async () => {
    const doc = (await h.call('GET', '/docs-json', { key: null })).body;
    expect(Object.keys(doc.paths['/v1/schedules']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/schedules/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
    expect(Object.keys(doc.paths['/v1/schedules'].post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '409']),
    );
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas.CreateScheduleRequestDto.properties).sort()).toEqual(
      ['cron', 'name', 'overlap', 'task', 'timezone'].sort(),
    );
    expect(schemas.ScheduleView.properties.nextRunAt).toMatchObject({ format: 'date-time', nullable: true });
    expect(schemas.TaskView.properties.scheduleId).toMatchObject({ format: 'uuid', nullable: true });
    expect(schemas.TaskView.properties.scheduledFor).toMatchObject({ format: 'date-time', nullable: true });
    expect(doc.paths['/v1/tasks'].get.parameters.map((p: { name: string }) => p.name)).toContain('scheduleId');
  });
});
