/**
 * 8. Bad input. HTTP: random and mutated requests (methods, paths, ids, query strings, headers,
 * bodies, sizes): zero 5xx, zero crashed processes, and nothing written by a rejected request
 * (rows added == what the 2xx answers account for). AMQP: malformed messages published to the work
 * exchange under served types all land in the dead-letter queue, the others in unrouted.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { waitFor } from '@tasksys/testing';
import type { ApiClient } from '../lib/client';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';
import { ADMIN_KEY, NAMESPACE } from '../lib/stack';

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
const chance = (p: number) => Math.random() < p;

const WEIRD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  '',
  ' ',
  'x'.repeat(5000),
  '\u0000',
  '😀',
  '<script>',
  "'; DROP TABLE tasks; --",
  [],
  {},
  [1, 2],
  { a: { b: { c: 1 } } },
  '1',
  'NaN',
  '9'.repeat(400),
  Number.MAX_SAFE_INTEGER + 2,
];

function validBody(): Record<string, unknown> {
  return pick([
    { type: 'demo.sleep', payload: { ms: 10 } },
    { type: 'demo.sleep', payload: { ms: 10, steps: 2, failTimes: 0 }, maxAttempts: 2, timeoutMs: 5000 },
    { type: 'demo.sleep', payload: { ms: 50, fatal: true }, maxAttempts: 1 },
    { type: 'sql.query', payload: { sql: 'select 1' } },
  ]);
}

function mutate(v: unknown, depth = 0): unknown {
  if (depth > 3 || chance(0.15)) return pick(WEIRD);
  if (Array.isArray(v)) return chance(0.5) ? v.map((x) => mutate(x, depth + 1)) : [...v, pick(WEIRD)];
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    const op = Math.random();
    if (op < 0.25 && keys.length) delete o[pick(keys)];
    else if (op < 0.5)
      o[pick(['extra', '__proto__', 'constructor', 'status', 'id', 'owner', 'attempt', 'result', pick(keys) ?? 'k'])] =
        pick(WEIRD);
    else if (keys.length) {
      const k = pick(keys);
      o[k] = mutate(o[k], depth + 1);
    }
    return o;
  }
  return chance(0.5) ? pick(WEIRD) : v;
}

function deepJson(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

function body(): { raw?: string | Buffer; json?: unknown; contentType?: string } {
  const r = Math.random();
  if (r < 0.45) return { json: mutate(validBody()) };
  if (r < 0.55)
    return { json: { tasks: Array.from({ length: Math.floor(Math.random() * 4) }, () => mutate(validBody())) } };
  if (r < 0.62)
    return {
      raw: JSON.stringify(validBody()).slice(0, Math.floor(Math.random() * 30)),
      contentType: 'application/json',
    };
  if (r < 0.68)
    return {
      raw: randomBytes(Math.floor(Math.random() * 2000)),
      contentType: pick(['application/json', 'application/octet-stream', 'text/plain']),
    };
  if (r < 0.72)
    return {
      raw: JSON.stringify({
        type: 'demo.sleep',
        payload: { ms: 1, pad: 'x'.repeat(300_000 + Math.floor(Math.random() * 1e6)) },
      }),
      contentType: 'application/json',
    };
  if (r < 0.76) return { raw: deepJson(pick([100, 5000, 100_000])), contentType: 'application/json' };
  if (r < 0.8) return { raw: 'type=demo.sleep&payload=1', contentType: 'application/x-www-form-urlencoded' };
  if (r < 0.85) return { json: pick(WEIRD) };
  if (r < 0.9)
    return { raw: '{"type":"demo.sleep","payload":{"ms":1},"type":"demo.crash"}', contentType: 'application/json' };
  return {};
}

function id(known: string[]): string {
  return pick([
    known.length ? pick(known) : randomUUID(),
    randomUUID(),
    'not-a-uuid',
    '00000000-0000-0000-0000-000000000000',
    '%00',
    '..%2f..%2f',
    'x'.repeat(300),
    '1 OR 1=1',
    randomUUID().toUpperCase(),
  ]);
}

function path(known: string[]): string {
  const r = Math.random();
  if (r < 0.35) return '/v1/tasks';
  if (r < 0.45) return '/v1/tasks/batch';
  if (r < 0.75)
    return `/v1/tasks/${id(known)}${pick(['', '/cancel', '/start', '/retry', '/events', '/reports', '/nope'])}`;
  if (r < 0.82)
    return `/v1/tasks?${pick(['limit=-1', 'limit=100000', 'limit=abc', 'cursor=garbage', 'cursor=' + 'A'.repeat(2000), 'status=bogus', 'type=%00', 'owner=someone', 'limit=5&limit=6', 'status[]=x'])}`;
  if (r < 0.9) return pick(['/v1/admin/api-keys', '/v1/admin/reports', '/v1/admin/reports?limit=-5']);
  return pick([
    '/',
    '/v1',
    '/v2/tasks',
    '/health/ready',
    '/metrics',
    '/docs-json',
    `/${randomBytes(8).toString('hex')}`,
    '/v1/tasks/%E0%A4%A',
  ]);
}

interface Tally {
  sent: number;
  byStatus: Record<string, number>;
  fiveXX: string[];
  transportErrors: number;
  createdTasks: number;
  createdReports: number;
}

async function fuzzOne(ctx: { url: string; user: ApiClient; known: string[] }, t: Tally): Promise<void> {
  const method = pick(['GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
  const p = path(ctx.known);
  const b = ['GET', 'HEAD'].includes(method) ? {} : body();
  const headers: Record<string, string> = {};
  const auth = Math.random();
  if (auth < 0.8) headers['authorization'] = `Bearer ${ctx.user.key}`;
  else if (auth < 0.87)
    headers['authorization'] = pick([
      'Bearer',
      'Bearer ',
      `Bearer ${ctx.user.key}x`,
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      'Bearer tsk_' + 'z'.repeat(500),
    ]);
  if (chance(0.3))
    headers['idempotency-key'] = pick([
      randomUUID(),
      'k',
      'x'.repeat(1000),
      '😀'.length ? 'emoji-key' : '',
      randomUUID(),
    ]);
  if (b.contentType) headers['content-type'] = b.contentType;
  if (b.json !== undefined)
    headers['content-type'] = pick([
      'application/json',
      'application/json',
      'application/json; charset=utf-16',
      'text/plain',
    ]);
  if (chance(0.05)) headers['x-request-id'] = 'r'.repeat(5000);
  const payload = b.raw ?? (b.json !== undefined ? (JSON.stringify(b.json) ?? 'undefined') : undefined);
  t.sent++;
  try {
    const res = await fetch(`${ctx.url}${p}`, { method, headers, body: payload, signal: AbortSignal.timeout(20_000) });
    const text = method === 'HEAD' ? '' : await res.text();
    t.byStatus[res.status] = (t.byStatus[res.status] ?? 0) + 1;
    if (res.status >= 500 && t.fiveXX.length < 20)
      t.fiveXX.push(`${method} ${p.slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`);
    if (res.status === 201 && method === 'POST') {
      try {
        const j = JSON.parse(text) as { id?: string; items?: { id: string }[]; taskId?: string; message?: string };
        const route = p.split('?')[0];
        if (route === '/v1/tasks' && j.id) {
          t.createdTasks++;
          ctx.known.push(j.id);
        } else if (route === '/v1/tasks/batch' && j.items) {
          t.createdTasks += j.items.length;
          ctx.known.push(...j.items.map((x) => x.id));
        } else if (route.endsWith('/reports')) t.createdReports++;
      } catch {
        /* not JSON */
      }
    }
  } catch {
    t.transportErrors++;
  }
}

export const fuzz: Scenario = {
  id: 'bad-input',
  title: `bad input: random/mutated HTTP requests and malformed AMQP messages`,
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.fuzz;
    const since = Date.now();
    const user = await ctx.client('fuzz');
    const count = async () =>
      (
        await stack.db.query(
          `SELECT (SELECT count(*) FROM tasks WHERE owner = $1)::int AS tasks, (SELECT count(*) FROM task_reports)::int AS reports, (SELECT count(*) FROM api_keys)::int AS keys`,
          [user.owner],
        )
      ).rows[0] as { tasks: number; reports: number; keys: number };
    const before = await count();
    const known: string[] = [(await user.submit({ type: 'demo.sleep', payload: { ms: 1 } })).id];
    before.tasks += 1;
    const t: Tally = { sent: 0, byStatus: {}, fiveXX: [], transportErrors: 0, createdTasks: 0, createdReports: 0 };
    // targeted probes first: a NUL character (U+0000) in every text field that reaches PostgreSQL,
    // which rejects it in text and jsonb ("invalid byte sequence", "unsupported Unicode escape")
    const admin = { key: ADMIN_KEY };
    const probes: [string, string, unknown, string][] = [
      ['GET', '/v1/tasks?type=%00', undefined, user.key],
      ['GET', '/v1/tasks?status=%00', undefined, user.key],
      ['GET', '/v1/tasks?cursor=%00', undefined, user.key],
      ['GET', '/v1/tasks?owner=%00', undefined, admin.key],
      ['POST', `/v1/tasks/${known[0]}/reports`, { message: 'a\u0000b' }, user.key],
      ['POST', '/v1/admin/api-keys', { owner: 'a\u0000b', role: 'user' }, admin.key],
      ['POST', '/v1/tasks', { type: 'demo.sleep\u0000', payload: { ms: 1 } }, user.key],
      ['POST', '/v1/tasks', { type: 'demo.sleep', payload: { ms: 1, 'k\u0000': 1 } }, user.key],
    ];
    const probeAnswers: string[] = [];
    for (const [method, path, json, key] of probes) {
      const res = await fetch(`${stack.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json).replace(/\\\\u0000/g, '\\u0000'),
      });
      const text = await res.text();
      t.sent++;
      t.byStatus[res.status] = (t.byStatus[res.status] ?? 0) + 1;
      probeAnswers.push(`${method} ${path} ${JSON.stringify(json) ?? ''} -> ${res.status}`);
      if (res.status >= 500)
        t.fiveXX.push(`probe ${method} ${path} ${JSON.stringify(json) ?? ''} -> ${res.status} ${text.slice(0, 120)}`);
      if (res.status === 201 && path === '/v1/tasks') t.createdTasks++;
      if (res.status === 201 && path.endsWith('/reports')) t.createdReports++;
      if (res.status === 201 && path === '/v1/admin/api-keys') before.keys++;
    }
    ctx.log(`  fuzz probes: ${probeAnswers.join(' | ')}`);
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: p.concurrency }, async () => {
        while (t.sent < p.http) await fuzzOne({ url: stack.apiUrl, user, known }, t);
      }),
    );
    const httpMs = Date.now() - t0;
    const after = await count();

    // AMQP: purge the dead-letter and unrouted queues, publish malformed messages, count where each lands
    const ch = await stack.channel();
    await ch.purgeQueue(`${NAMESPACE}.dead`);
    await ch.purgeQueue(`${NAMESPACE}.unrouted`);
    const kinds = [
      () => randomBytes(1 + Math.floor(Math.random() * 200)),
      () => Buffer.from('not json {'),
      () => Buffer.from(''),
      () => Buffer.from(JSON.stringify({ v: 2, taskId: randomUUID(), type: 'demo.sleep' })),
      () => Buffer.from(JSON.stringify({ v: 1, taskId: 'nope', type: 'demo.sleep' })),
      () => Buffer.from(JSON.stringify({ v: 1, taskId: randomUUID(), type: 'demo.sleep' })), // unknown task
      () => Buffer.from(JSON.stringify({ v: 1, taskId: randomUUID() })),
      () => Buffer.from(JSON.stringify([1, 2, 3])),
      () => Buffer.from('null'),
      () => Buffer.from(deepJson(50_000)),
    ];
    // Every fifth under a type no worker serves (no SQL target here, or unknown): the alternate
    // exchange keeps those in unrouted; the rest reach workers, which dead-letter them.
    const unservedKeys = ['sql.query', 'unknown.type', ''];
    let toUnrouted = 0;
    for (let i = 0; i < p.amqp; i++) {
      const unserved = i % 5 === 4;
      if (unserved) toUnrouted++;
      const key = unserved ? pick(unservedKeys) : pick(['demo.sleep', 'demo.crash']);
      ch.publish(NAMESPACE, key, kinds[i % kinds.length](), {
        persistent: chance(0.5),
        contentType: pick(['application/json', 'text/plain', undefined]),
      });
    }
    const toDead = p.amqp - toUnrouted;
    let deadCount = 0;
    const deadOk = await waitFor(
      'malformed messages dead-lettered',
      async () => (deadCount = await stack.queueDepth(`${NAMESPACE}.dead`)) >= toDead,
      90_000,
      500,
    ).then(
      () => true,
      () => false,
    );
    let unrouted = 0;
    await waitFor(
      'unserved messages in unrouted',
      async () => (unrouted = await stack.queueDepth(`${NAMESPACE}.unrouted`)) >= toUnrouted,
      30_000,
      250,
    ).catch(() => undefined);
    await ch.purgeQueue(`${NAMESPACE}.unrouted`);
    await ch.close().catch(() => undefined);

    // tasks the fuzzer legitimately created (2xx): cancel any still running, then check them like all others
    const ids = (await stack.db.query(`SELECT id FROM tasks WHERE owner = $1`, [user.owner])).rows.map(
      (r) => r.id as string,
    );
    const unaccounted = ids.filter((x) => !known.includes(x));
    if (unaccounted.length) {
      const rows = (
        await stack.db.query(`SELECT id, payload, idempotency_key, created_at FROM tasks WHERE id = ANY($1::uuid[])`, [
          unaccounted,
        ])
      ).rows;
      for (const r of rows) ctx.log(`  fuzz: task without a 201 answer: ${JSON.stringify(r).slice(0, 300)}`);
    }
    for (const id of ids) await user.cancel(id);
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, Date.now());
    const alive = [stack.api, ...stack.workers].every((x) => x.alive);
    return {
      tasks,
      recoverMs,
      extra: [
        check(
          `${t.sent} HTTP requests: zero 5xx`,
          t.fiveXX.length === 0,
          t.fiveXX.length
            ? t.fiveXX.join(' | ')
            : `answers ${JSON.stringify(t.byStatus)}, transport errors ${t.transportErrors}, ${Math.round(t.sent / (httpMs / 1000))} req/s`,
        ),
        check(
          'nothing written by a rejected request',
          after.tasks - before.tasks === t.createdTasks &&
            after.reports - before.reports === t.createdReports &&
            after.keys === before.keys,
          `tasks +${after.tasks - before.tasks} (2xx creates: ${t.createdTasks}), reports +${after.reports - before.reports} (2xx: ${t.createdReports}), api keys +${after.keys - before.keys}`,
        ),
        check(
          `${p.amqp} malformed AMQP messages: those of served types dead-lettered, the others kept in unrouted`,
          deadOk && deadCount === toDead && unrouted === toUnrouted,
          `${deadCount} of ${toDead} in ${NAMESPACE}.dead, ${unrouted} of ${toUnrouted} in ${NAMESPACE}.unrouted`,
        ),
        check('api and workers alive', alive, alive ? 'all alive' : 'a process died'),
        noCrashes(ctx, since),
      ],
      notes: [
        `HTTP: ${t.sent} requests in ${(httpMs / 1000).toFixed(1)} s at concurrency ${p.concurrency}, answers ${JSON.stringify(t.byStatus)}; AMQP: ${p.amqp} malformed messages in ${kinds.length} shapes`,
      ],
    };
  },
};
