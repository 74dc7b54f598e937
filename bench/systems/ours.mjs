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

export const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks';
export const AMQP = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
// One worker process, as the peers run one consumer process; a deep prefetch (1,000 in flight)
// lets its claims and completions share statements. BENCH_WORKERS / BENCH_WORKER_CONCURRENCY override.
export const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
export const WORKER_CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 1000);
const RETRY_TIERS_MS = [1000, 10000, 60000, 600000];
const TASK = { type: 'demo.sleep', payload: { ms: 0 } };

export const services = () => ['postgres', 'rabbitmq'];
export const describe = () =>
  `ours: built api (+ outbox relay) and ${WORKERS} worker process${WORKERS === 1 ? '' : 'es'} (WORKER_CONCURRENCY ${WORKER_CONCURRENCY}); demo.sleep {ms: 0}; POST /v1/tasks/batch 1,000 per request, 4 in flight`;

// The api's typed client, built by `npm run build` (client:build) as CommonJS this ES module can import.
const CLIENT = new URL('../../dist/libs/client/index.js', import.meta.url);
const tasksys = async (cfg, key) => new (await import(CLIENT.href)).TasksysClient({ baseUrl: cfg.base, key });

export function checkBuilt() {
  const missing = ['dist/apps/api/main.js', 'dist/apps/worker/main.js', 'dist/libs/client/index.js'].filter(
    (f) => !existsSync(f),
  );
  if (missing.length) throw new Error(`${missing.join(', ')} missing: run \`npm run build\` first`);
}

async function ready(url) {
  const r = await fetch(url);
  return r.ok;
}

/**
 * One isolated copy of our system: schema `bench_<id>`, namespace `bench-<id>`. It keeps every
 * process it started in `processes`, so `stop()` and `cleanup()` work after a failed start too.
 */
export class Deployment {
  constructor(id, logDir) {
    checkBuilt();
    this.logDir = logDir;
    this.adminKey = `bench-admin-${randomBytes(12).toString('hex')}`;
    this.env = {
      DATABASE_URL: PG,
      DATABASE_SCHEMA: `bench_${id}`,
      RABBITMQ_URL: AMQP,
      TASKS_NAMESPACE: `bench-${id}`,
      RETRY_TIERS_MS: RETRY_TIERS_MS.join(','),
      LOG_LEVEL: 'warn',
    };
    this.cfg = { schema: this.env.DATABASE_SCHEMA, ns: this.env.TASKS_NAMESPACE }; // plain data: children get it as JSON
    this.processes = {};
  }

  /** The api (migrations, outbox relay); resolves when it is ready. */
  async startApi(env = {}) {
    const port = await freePort();
    this.cfg.base = `http://127.0.0.1:${port}`;
    const api = (this.processes.api = startProcess('api', ['dist/apps/api/main.js'], {
      logDir: this.logDir,
      env: {
        ...this.env,
        PORT: String(port),
        ADMIN_API_KEY: this.adminKey,
        RATE_LIMIT_PER_MINUTE: '1000000',
        BODY_LIMIT: '1mb',
        ...env,
      },
    }));
    try {
      await waitUntil(
        'api /health/ready',
        () => (api.exitCode === null ? ready(`${this.cfg.base}/health/ready`) : Promise.reject()),
        60_000,
      );
    } catch (e) {
      if (api.exitCode !== null) e.message += ` (api exited ${api.exitCode}; see its log)`;
      throw e;
    }
    return api;
  }

  /** Workers `worker-1..n`, started together; resolves when all are ready (consuming). */
  async startWorkers(n, env = {}) {
    return Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const name = `worker-${k + 1}`;
        const hp = await freePort();
        const w = (this.processes[name] = startProcess(name, ['dist/apps/worker/main.js'], {
          logDir: this.logDir,
          env: {
            ...this.env,
            WORKER_ID: `${this.cfg.ns}-${name}`,
            WORKER_HEALTH_PORT: String(hp),
            WORKER_SHUTDOWN_GRACE_MS: '2000',
            ...env,
          },
        }));
        await waitUntil(
          `${name} /health/ready`,
          () => (w.exitCode === null ? ready(`http://127.0.0.1:${hp}/health/ready`) : Promise.reject()),
          60_000,
        );
        return w;
      }),
    );
  }

  /** A user key for `owner`, made with the admin key. */
  async createKey(owner) {
    return (await (await tasksys(this.cfg, this.adminKey)).admin.createKey(owner, 'user')).key;
  }

  /** Stops the named processes (default: all): SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000, names = Object.keys(this.processes)) {
    await Promise.all(names.map((n) => this.processes[n].stop(graceMs)));
    for (const n of names) delete this.processes[n];
  }
}

export async function prepare({ id, logDir }) {
  const d = new Deployment(id, logDir);
  try {
    await d.startApi();
    await d.startWorkers(WORKERS, { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) });
    d.cfg.key = await d.createKey('bench');
  } catch (e) {
    // the runner cleans up only what prepare returned
    await d.stop();
    await cleanup(d.cfg).catch(() => {});
    throw e;
  }
  return { cfg: d.cfg, processes: d.processes };
}

export async function cleanup(cfg) {
  const c = new pg.Client(PG);
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${cfg.schema}" CASCADE`);
  await c.end();
  const conn = await amqp.connect(AMQP);
  const ch = await conn.createChannel();
  const labels = RETRY_TIERS_MS.map((ms) => (ms % 60000 === 0 ? `${ms / 60000}m` : `${ms / 1000}s`));
  // Work queues are per task type (<ns>.work.<type>, and .high on quorum queues); `work` is the legacy single queue.
  const work = ['demo.sleep', 'demo.crash', 'sql.query'].flatMap((t) => [`work.${t}`, `work.${t}.high`]);
  for (const q of ['work', ...work, 'unrouted', 'dead', ...labels.map((l) => `retry.${l}`)])
    await ch.deleteQueue(`${cfg.ns}.${q}`);
  for (const x of ['', '.unrouted', '.retry', '.dlx', '.control']) await ch.deleteExchange(`${cfg.ns}${x}`);
  await conn.close();
}

/**
 * Raw HTTP to the api as one key, for timing single reads (scale.mjs): keep-alive, at most 64
 * connections (further requests queue in the client). Submits go through @tasksys/client (producer).
 */
export function client(cfg, key = cfg.key) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const request = (method, path, body) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(`${cfg.base}${path}`, {
        method,
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          ...(data && { 'content-type': 'application/json', 'content-length': data.length }),
        },
      });
      req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.code ?? ''} ${e.message}`)));
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      });
      req.end(data);
    });
  const expect = (status, method) => async (path, body) => {
    const r = await request(method, path, body);
    if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 200)}`);
    return JSON.parse(r.text);
  };
  return { request, post: expect(201, 'POST'), get: expect(200, 'GET'), close: () => agent.destroy() };
}

/** The producer: batches through POST /v1/tasks/batch, single tasks through POST /v1/tasks. */
export async function producer(cfg, task = TASK) {
  const c = await tasksys(cfg, cfg.key);
  // One call first, so the api has looked the new key up before the burst: until then each concurrent
  // request of an unknown key counts against the per-address budget of unauthenticated requests.
  await c.list({ limit: 1 });
  // At most 64 requests in flight, the rest queued here, as the http.Agent (maxSockets 64) the bench
  // used before: fetch (undici) sets no limit of connections per origin.
  const limit = limiter(64);
  return {
    sendBatch: (items) => limit(() => c.submitBatch(items.map(() => task))),
    sendOne: async () => (await limit(() => c.submit(task.type, task.payload))).id,
    close: async () => undefined,
  };
}

/** Runs at most `n` of the given calls at a time, in the order they came. */
function limiter(n) {
  let active = 0;
  const waiting = [];
  const next = () => {
    if (active >= n || waiting.length === 0) return;
    active++;
    const { work, resolve, reject } = waiting.shift();
    work()
      .then(resolve, reject)
      .finally(() => {
        active--;
        next();
      });
  };
  return (work) =>
    new Promise((resolve, reject) => {
      waiting.push({ work, resolve, reject });
      next();
    });
}

/** Polls the tasks table every 100 ms until `total` succeeded; returns when the last one finished. */
export async function finishedAt(cfg, total, timeoutMs = Infinity) {
  const c = new pg.Client(PG);
  await c.connect();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`fewer than ${total} tasks succeeded within ${timeoutMs} ms`);
      const { rows } = await c.query(`SELECT status, count(*)::int AS n FROM "${cfg.schema}".tasks GROUP BY status`);
      const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
      if (by.failed || by.cancelled) throw new Error(`tasks ended badly: ${JSON.stringify(by)}`);
      if ((by.succeeded ?? 0) >= total) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const { rows } = await c.query(
      `SELECT extract(epoch FROM max(finished_at)) * 1000 AS at FROM "${cfg.schema}".tasks`,
    );
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
