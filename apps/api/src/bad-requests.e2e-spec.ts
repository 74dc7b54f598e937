import { randomUUID } from 'node:crypto';
import { type ApiHarness, type RequestOptions, startApi, TEST_ADMIN_KEY } from './testing/api-harness';

interface BadCase {
  name: string;
  method: 'GET' | 'POST';
  path: string | ((id: string) => string);
  opts?: RequestOptions;
  status: number;
  /** Named in the message (and in `field` when the error is about one field). */
  field: string;
}

const sleep = (payload: unknown, extra: Record<string, unknown> = {}) => ({
  body: { type: 'demo.sleep', payload, ...extra },
});

const CASES: BadCase[] = [
  { name: 'empty object', method: 'POST', path: '/v1/tasks', opts: { body: {} }, status: 400, field: 'type' },
  {
    name: 'no type',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { payload: { ms: 1 } } },
    status: 400,
    field: 'type',
  },
  {
    name: 'type not a string',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 7, payload: { ms: 1 } } },
    status: 400,
    field: 'type',
  },
  {
    name: 'type too long',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 'x'.repeat(101), payload: {} } },
    status: 400,
    field: 'type',
  },
  {
    name: 'unknown type',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 'nope', payload: {} } },
    status: 400,
    field: 'type',
  },
  {
    name: 'disabled type demo.crash',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 'demo.crash', payload: { afterMs: 1 } } },
    status: 400,
    field: 'type',
  },
  {
    name: 'disabled type sql.query',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 'sql.query', payload: { sql: 'select 1' } } },
    status: 400,
    field: 'type',
  },
  {
    name: 'no payload',
    method: 'POST',
    path: '/v1/tasks',
    opts: { body: { type: 'demo.sleep' } },
    status: 400,
    field: 'payload',
  },
  { name: 'payload a string', method: 'POST', path: '/v1/tasks', opts: sleep('soon'), status: 400, field: 'payload' },
  { name: 'payload.ms missing', method: 'POST', path: '/v1/tasks', opts: sleep({}), status: 400, field: 'payload.ms' },
  {
    name: 'payload.ms negative',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: -1 }),
    status: 400,
    field: 'payload.ms',
  },
  {
    name: 'payload.ms a string',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: '10' }),
    status: 400,
    field: 'payload.ms',
  },
  {
    name: 'payload.steps zero',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1, steps: 0 }),
    status: 400,
    field: 'payload.steps',
  },
  {
    name: 'payload unknown field',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1, extra: true }),
    status: 400,
    field: 'payload.extra',
  },
  {
    name: 'unknown top-level field',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { owner: 'bob' }),
    status: 400,
    field: 'owner',
  },
  {
    name: 'start not a boolean',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { start: 'yes' }),
    status: 400,
    field: 'start',
  },
  {
    name: 'maxAttempts zero',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { maxAttempts: 0 }),
    status: 400,
    field: 'maxAttempts',
  },
  {
    name: 'maxAttempts over 100',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { maxAttempts: 101 }),
    status: 400,
    field: 'maxAttempts',
  },
  {
    name: 'maxAttempts fractional',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { maxAttempts: 1.5 }),
    status: 400,
    field: 'maxAttempts',
  },
  {
    name: 'timeoutMs negative',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { timeoutMs: -1 }),
    status: 400,
    field: 'timeoutMs',
  },
  {
    name: "timeoutMs over the type's limit",
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { timeoutMs: 5_000_000 }),
    status: 400,
    field: 'timeoutMs',
  },
  {
    name: 'priority over 9',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { priority: 10 }),
    status: 400,
    field: 'priority',
  },
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/v1/tasks',
    opts: { rawBody: '{"type": "demo.sleep",' },
    status: 400,
    field: 'body',
  },
  { name: 'JSON null body', method: 'POST', path: '/v1/tasks', opts: { rawBody: 'null' }, status: 400, field: 'body' },
  {
    name: 'JSON array body',
    method: 'POST',
    path: '/v1/tasks',
    opts: { rawBody: '[1,2]' },
    status: 400,
    field: 'body',
  },
  {
    name: 'body over the limit',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1, pad: 'x'.repeat(300_000) }),
    status: 413,
    field: 'body',
  },
  {
    name: 'not JSON',
    method: 'POST',
    path: '/v1/tasks',
    opts: { rawBody: 'type=demo.sleep', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    status: 415,
    field: 'Content-Type',
  },
  {
    name: 'Idempotency-Key too long',
    method: 'POST',
    path: '/v1/tasks',
    opts: { ...sleep({ ms: 1 }), headers: { 'Idempotency-Key': 'k'.repeat(201) } },
    status: 400,
    field: 'Idempotency-Key',
  },
  { name: 'id not a uuid (get)', method: 'GET', path: '/v1/tasks/not-a-uuid', status: 400, field: 'id' },
  { name: 'id not a uuid (cancel)', method: 'POST', path: '/v1/tasks/123/cancel', status: 400, field: 'id' },
  { name: 'id not a uuid (events)', method: 'GET', path: '/v1/tasks/123/events', status: 400, field: 'id' },
  { name: 'id not a uuid (stream)', method: 'GET', path: '/v1/tasks/123/stream', status: 400, field: 'id' },
  { name: 'unknown task', method: 'POST', path: `/v1/tasks/${randomUUID()}/start`, status: 404, field: 'task' },
  { name: 'limit zero', method: 'GET', path: '/v1/tasks?limit=0', status: 400, field: 'limit' },
  { name: 'limit over 100', method: 'GET', path: '/v1/tasks?limit=101', status: 400, field: 'limit' },
  { name: 'limit not a number', method: 'GET', path: '/v1/tasks?limit=ten', status: 400, field: 'limit' },
  { name: 'unknown status filter', method: 'GET', path: '/v1/tasks?status=done', status: 400, field: 'status' },
  {
    name: 'status given twice',
    method: 'GET',
    path: '/v1/tasks?status=new&status=queued',
    status: 400,
    field: 'status',
  },
  { name: 'forged cursor', method: 'GET', path: '/v1/tasks?cursor=bm90LWEtY3Vyc29y', status: 400, field: 'cursor' },
  { name: 'unknown query parameter', method: 'GET', path: '/v1/tasks?sort=asc', status: 400, field: 'sort' },
  {
    name: 'report without message',
    method: 'POST',
    path: (id) => `/v1/tasks/${id}/reports`,
    opts: { body: {} },
    status: 400,
    field: 'message',
  },
  {
    name: 'report with empty message',
    method: 'POST',
    path: (id) => `/v1/tasks/${id}/reports`,
    opts: { body: { message: '' } },
    status: 400,
    field: 'message',
  },
  {
    name: 'report too long',
    method: 'POST',
    path: (id) => `/v1/tasks/${id}/reports`,
    opts: { body: { message: 'x'.repeat(4001) } },
    status: 400,
    field: 'message',
  },
  {
    name: 'report unknown field',
    method: 'POST',
    path: (id) => `/v1/tasks/${id}/reports`,
    opts: { body: { message: 'hi', severity: 1 } },
    status: 400,
    field: 'severity',
  },
  {
    name: 'api key owner with a space',
    method: 'POST',
    path: '/v1/admin/api-keys',
    opts: { key: TEST_ADMIN_KEY, body: { owner: 'a b', role: 'user' } },
    status: 400,
    field: 'owner',
  },
  {
    name: 'api key unknown role',
    method: 'POST',
    path: '/v1/admin/api-keys',
    opts: { key: TEST_ADMIN_KEY, body: { owner: 'zed', role: 'root' } },
    status: 400,
    field: 'role',
  },
  {
    name: 'batch tasks not an array',
    method: 'POST',
    path: '/v1/tasks/batch',
    opts: { body: { tasks: {} } },
    status: 400,
    field: 'tasks',
  },
  {
    name: 'batch empty',
    method: 'POST',
    path: '/v1/tasks/batch',
    opts: { body: { tasks: [] } },
    status: 400,
    field: 'tasks',
  },
  {
    name: 'batch item unknown field',
    method: 'POST',
    path: '/v1/tasks/batch',
    opts: {
      body: {
        tasks: [
          { type: 'demo.sleep', payload: { ms: 1 } },
          { type: 'demo.sleep', payload: { ms: 1 }, foo: 1 },
        ],
      },
    },
    status: 400,
    field: 'tasks[1].foo',
  },
  // Found by the chaos fuzzer: PostgreSQL cannot store U+0000, which was a 500.
  { name: 'NUL in a query filter', method: 'GET', path: '/v1/tasks?type=%00', status: 400, field: 'query.type' },
  {
    name: 'NUL in a payload string',
    method: 'POST',
    path: '/v1/tasks',
    opts: sleep({ ms: 1 }, { type: 'demo\u0000sleep' }),
    status: 400,
    field: 'type',
  },
  {
    name: 'NUL in a report',
    method: 'POST',
    path: (id) => `/v1/tasks/${id}/reports`,
    opts: { body: { message: 'a\u0000b' } },
    status: 400,
    field: 'message',
  },
  {
    name: 'batch item bad payload',
    method: 'POST',
    path: '/v1/tasks/batch',
    opts: { body: { tasks: [{ type: 'demo.sleep', payload: { ms: 'x' } }] } },
    status: 400,
    field: 'tasks[0].payload.ms',
  },
];

describe('bad requests: each a 4xx naming the field, never a 5xx, nothing written', () => {
  let h: ApiHarness;
  let key: string;
  let taskId: string;
  let before: Awaited<ReturnType<ApiHarness['counts']>>;

  beforeAll(async () => {
    h = await startApi({ BODY_LIMIT: '256kb' });
    key = await h.newKey('alice');
    taskId = (
      await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 }, start: false } })
    ).body.id;
    before = await h.counts();
  });
  afterAll(() => h?.close());

  it('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const path = typeof c.path === 'function' ? c.path(taskId) : c.path;
    const r = await h.call(c.method, path, { key, ...c.opts, headers: { ...c.opts?.headers } });
    expect({ status: r.status, body: r.body }).toMatchObject({
      status: c.status,
      body: { statusCode: c.status, message: expect.stringContaining(c.field) },
    });
    if (c.status === 400 && c.field !== 'body') expect(r.body.field).toBe(c.field);
  });

  it('wrote nothing', async () => {
    expect(await h.counts()).toEqual(before);
  });
});
