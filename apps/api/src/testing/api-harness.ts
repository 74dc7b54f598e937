import type { AddressInfo } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { connect } from 'amqplib';
import { buildTopology, declareTopology, Topology } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { createApi } from '../app/bootstrap';

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface HttpAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  /** Sent as is (for malformed JSON); overrides body. */
  rawBody?: string;
  headers?: Record<string, string>;
}

/** The real api on a random port, over its own migrated schema (and broker namespace, once wired). */
export interface ApiHarness {
  app: NestFastifyApplication;
  /** Every route the server registered, as `METHOD /path/:param` (HEAD twins left out). */
  routes: string[];
  baseUrl: string;
  t: TestDatabase;
  call<T = any>(method: string, path: string, opts?: RequestOptions): Promise<HttpAnswer<T>>;
  /** Issues a key through the admin API. */
  newKey(owner: string, role?: 'user' | 'admin'): Promise<string>;
  /**
   * Declares the work queues of `types` as a worker serving them would (the api declares none), so a
   * test can see what the api published; returns that worker's topology. Deleted by `close`.
   */
  serveTypes(types: string[]): Promise<Topology>;
  /** Rows in the tables a request could write. */
  counts(): Promise<Record<'tasks' | 'task_events' | 'outbox' | 'task_reports' | 'api_keys', number>>;
  close(): Promise<void>;
}

export async function startApi(env: Record<string, string> = {}): Promise<ApiHarness> {
  const t = await createTestDatabase();
  const messaging = testMessagingConfig();
  let app: NestFastifyApplication;
  const routes: string[] = [];
  try {
    app = await createApi({
      DATABASE_URL: t.config.DATABASE_URL,
      DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
      DATABASE_POOL_SIZE: '20',
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '100000',
      RABBITMQ_URL: messaging.RABBITMQ_URL,
      TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
      RABBITMQ_PUBLISH_TIMEOUT_MS: String(messaging.RABBITMQ_PUBLISH_TIMEOUT_MS),
      RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
      OUTBOX_POLL_MS: String(messaging.OUTBOX_POLL_MS),
      ...env,
    });
    // Routes are registered when the app starts listening: record them as they are.
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onRoute', (route) => {
        for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
      });
    await app.listen(0, '127.0.0.1');
  } catch (err) {
    await t.drop();
    throw err;
  }
  const { port } = app.getHttpServer().address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  const call = async <T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<HttpAnswer<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? TEST_ADMIN_KEY : opts.key;
    if (key !== null) headers['authorization'] = `Bearer ${key}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  };

  const served: Topology[] = [];
  return {
    app,
    routes,
    baseUrl,
    t,
    call,
    async serveTypes(types) {
      const topology = buildTopology(messaging, { serves: types });
      const conn = await connect(messaging.RABBITMQ_URL);
      try {
        await declareTopology(conn, topology);
      } finally {
        await conn.close();
      }
      served.push(topology);
      return topology;
    },
    async newKey(owner, role = 'user') {
      const r = await call('POST', '/v1/admin/api-keys', { body: { owner, role } });
      if (r.status !== 201) throw new Error(`issuing a key failed: ${r.status} ${r.text}`);
      return r.body.key as string;
    },
    async counts() {
      // The relay deletes outbox rows as they are confirmed, so count rows ever written (the identity's position).
      const [row] = await t.db.query(
        `SELECT (SELECT count(*) FROM tasks)::int AS tasks, (SELECT count(*) FROM task_events)::int AS task_events,
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_id_seq)::int AS outbox, (SELECT count(*) FROM task_reports)::int AS task_reports,
                (SELECT count(*) FROM api_keys)::int AS api_keys`,
      );
      return row;
    },
    async close() {
      const topology = app.get(Topology);
      try {
        await app.close();
      } finally {
        for (const worker of served) await deleteTopology(worker).catch(() => undefined);
        await deleteTopology(topology).catch(() => undefined);
        await t.drop();
      }
    },
  };
}
