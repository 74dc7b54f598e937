// Our system as real processes: the built api (outbox relay inside) and two workers on their own
// PostgreSQL schema and RabbitMQ namespace. The producer is an HTTP client: POST /v1/tasks/batch
// (1,000 tasks a request) for throughput, single POST /v1/tasks for latency. Completion and
// latency come from the tasks table (status, created_at, started_at, finished_at).
import amqp from 'amqplib';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { freePort, startProcess, waitUntil } from '../measure.mjs';

const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks';
const AMQP = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const WORKERS = 2;
const WORKER_CONCURRENCY = 200;
const RETRY_TIERS_MS = [1000, 10000, 60000, 600000];
const TASK = { type: 'demo.sleep', payload: { ms: 0 } };

export const services = () => ['postgres', 'rabbitmq'];
export const describe = () =>
  `ours: built api (+ outbox relay) and ${WORKERS} workers (WORKER_CONCURRENCY ${WORKER_CONCURRENCY}); demo.sleep {ms: 0}; POST /v1/tasks/batch 1,000 per request, 4 in flight`;

export function checkBuilt() {
  const missing = ['dist/apps/api/main.js', 'dist/apps/worker/main.js'].filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`${missing.join(', ')} missing: run \`npm run build\` first`);
}

async function ready(url) {
  const r = await fetch(url);
  return r.ok;
}

export async function prepare({ id, logDir }) {
  checkBuilt();
  const port = await freePort();
  const adminKey = `bench-admin-${randomBytes(12).toString('hex')}`;
  const env = {
    DATABASE_URL: PG,
    DATABASE_SCHEMA: `bench_${id}`,
    RABBITMQ_URL: AMQP,
    TASKS_NAMESPACE: `bench-${id}`,
    RETRY_TIERS_MS: RETRY_TIERS_MS.join(','),
    LOG_LEVEL: 'warn',
  };
  const processes = {};
  const cfg = { base: `http://127.0.0.1:${port}`, schema: env.DATABASE_SCHEMA, ns: env.TASKS_NAMESPACE };
  const api = (processes.api = startProcess('api', ['dist/apps/api/main.js'], {
    logDir,
    env: { ...env, PORT: String(port), ADMIN_API_KEY: adminKey, RATE_LIMIT_PER_MINUTE: '1000000', BODY_LIMIT: '1mb' },
  }));
  try {
    await waitUntil('api /health/ready', () => ready(`${cfg.base}/health/ready`), 60_000);
    for (let i = 1; i <= WORKERS; i++) {
      const hp = await freePort();
      const w = (processes[`worker-${i}`] = startProcess(`worker-${i}`, ['dist/apps/worker/main.js'], {
        logDir,
        env: { ...env, WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), WORKER_HEALTH_PORT: String(hp), WORKER_SHUTDOWN_GRACE_MS: '2000' },
      }));
      await waitUntil(`worker-${i} /health/ready`, () => (w.exitCode === null ? ready(`http://127.0.0.1:${hp}/health/ready`) : Promise.reject()), 60_000);
    }
    const r = await fetch(`${cfg.base}/v1/admin/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner: 'bench', role: 'user' }),
    });
    if (r.status !== 201) throw new Error(`POST /v1/admin/api-keys: ${r.status} ${await r.text()}`);
    cfg.key = (await r.json()).key;
  } catch (e) {
    if (api.exitCode !== null) e.message += ` (api exited ${api.exitCode}; see its log)`;
    throw Object.assign(e, { processes });
  }
  return { cfg, processes };
}

export async function cleanup(cfg) {
  const c = new pg.Client(PG);
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${cfg.schema}" CASCADE`);
  await c.end();
  const conn = await amqp.connect(AMQP);
  const ch = await conn.createChannel();
  const labels = RETRY_TIERS_MS.map((ms) => (ms % 60000 === 0 ? `${ms / 60000}m` : `${ms / 1000}s`));
  for (const q of ['work', 'unrouted', 'dead', ...labels.map((l) => `retry.${l}`)]) await ch.deleteQueue(`${cfg.ns}.${q}`);
  for (const x of ['', '.unrouted', '.retry', '.dlx', '.control']) await ch.deleteExchange(`${cfg.ns}${x}`);
  await conn.close();
}

/** The HTTP client: keep-alive, at most 64 connections (further requests queue in the client). */
export async function producer(cfg) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (path, body) =>
    new Promise((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = http.request(`${cfg.base}${path}`, {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${cfg.key}`, 'content-type': 'application/json', 'content-length': data.length },
      });
      req.on('error', (e) => reject(new Error(`POST ${path}: ${e.code ?? ''} ${e.message}`)));
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 201) reject(new Error(`POST ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
      });
      req.end(data);
    });
  return {
    sendBatch: (items) => post('/v1/tasks/batch', { tasks: items.map(() => TASK) }),
    sendOne: async () => (await post('/v1/tasks', TASK)).id,
    close: async () => agent.destroy(),
  };
}

/** Polls the tasks table every 100 ms until `total` succeeded; returns when the last one finished. */
export async function finishedAt(cfg, total) {
  const c = new pg.Client(PG);
  await c.connect();
  try {
    for (;;) {
      const { rows } = await c.query(`SELECT status, count(*)::int AS n FROM "${cfg.schema}".tasks GROUP BY status`);
      const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
      if (by.failed || by.cancelled) throw new Error(`tasks ended badly: ${JSON.stringify(by)}`);
      if ((by.succeeded ?? 0) >= total) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const { rows } = await c.query(`SELECT extract(epoch FROM max(finished_at)) * 1000 AS at FROM "${cfg.schema}".tasks`);
    return Number(rows[0].at);
  } finally {
    await c.end();
  }
}

/**
 * Per task: `db` = started_at - created_at (both the database's clock: from the insert to the
 * claim); `client` = started_at - the moment the client sent the request (same machine clock).
 */
export async function latencies(cfg, sent) {
  const c = new pg.Client(PG);
  await c.connect();
  try {
    const { rows } = await c.query(
      `SELECT x.t, extract(epoch FROM started_at - created_at) * 1000 AS db, extract(epoch FROM started_at) * 1000 - x.t AS client
         FROM unnest($1::uuid[], $2::float8[]) AS x(id, t) JOIN "${cfg.schema}".tasks USING (id)`,
      [sent.map(([id]) => id), sent.map(([, t]) => t)],
    );
    return { db: rows.map((r) => Number(r.db)), client: rows.map((r) => Number(r.client)) };
  } finally {
    await c.end();
  }
}
