/**
 * Rate limits across api replicas: two real api processes from dist/ (`npx nx build api` first)
 * behind no proxy, over one PostgreSQL database of their own (so its transaction counter counts
 * nothing but them) and a broker namespace of their own.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { buildTopology } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { dataSourceOptions, runMigrations } from '@tasksys/tasks';
import {
  type AppProcess,
  createScratchDatabase,
  ProcessFleet,
  type ScratchDatabase,
  testDatabaseUrl,
  uniqueName,
  waitFor,
} from '@tasksys/testing';

const ADMIN_KEY = 'rate-limit-admin-key-0123456789abcdef';

/** One api process, called over HTTP. */
class Replica {
  constructor(readonly app: AppProcess) {}

  async call(
    path: string,
    key: string | null,
    init: RequestInit = {},
  ): Promise<{ status: number; body: unknown; retryAfter: string | null }> {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
    if (key !== null) headers['authorization'] = `Bearer ${key}`;
    const res = await fetch(`${this.app.url}${path}`, { ...init, headers });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, retryAfter: res.headers.get('retry-after') };
  }

  async newKey(owner: string): Promise<string> {
    const r = await this.call('/v1/admin/api-keys', ADMIN_KEY, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ owner, role: 'user' }),
    });
    if (r.status !== 201) throw new Error(`issuing a key failed: ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as { key: string }).key;
  }
}

/** Sends `count` requests with `concurrency` in flight, request i to `targets[i % targets.length]`. */
async function spread<T>(count: number, concurrency: number, send: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) results[i] = await send(i);
    }),
  );
  return results;
}

describe('rate limits across two api processes (one database, real PostgreSQL and RabbitMQ)', () => {
  const schema = uniqueName('test_');
  const messaging = testMessagingConfig();
  // SIGTERM, then SIGKILL if one has not exited after 15 s; logs in tmp/test-logs/rate-limit-api<n>.log.
  const fleet = new ProcessFleet({ app: 'api', names: 'rate-limit-api' });
  let scratch: ScratchDatabase;
  let admin: Client;

  const startPair = async (env: Record<string, string>): Promise<[Replica, Replica]> => {
    const common = {
      DATABASE_URL: scratch.url,
      DATABASE_SCHEMA: schema,
      DATABASE_POOL_SIZE: '10',
      ADMIN_API_KEY: ADMIN_KEY,
      LOG_LEVEL: 'warn',
      RABBITMQ_URL: messaging.RABBITMQ_URL,
      TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
      RABBITMQ_PUBLISH_TIMEOUT_MS: String(messaging.RABBITMQ_PUBLISH_TIMEOUT_MS),
      RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
      // Nothing is submitted here: the relay's fallback poll would only add transactions to count.
      OUTBOX_POLL_MS: '60000',
      ...env,
    };
    const [a, b] = await Promise.all([fleet.start(common), fleet.start(common)]);
    return [new Replica(a), new Replica(b)];
  };

  const stopAll = async () => {
    await fleet.stopAll(15_000);
    // A backend writes its statistics when it exits, before it leaves pg_stat_activity.
    await waitFor(
      'the replicas’ database sessions to end',
      async () => {
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [
          scratch.name,
        ]);
        return rows[0].n === 0;
      },
      30_000,
    );
  };

  const committed = async (): Promise<number> => {
    const { rows } = await admin.query(`SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = $1`, [
      scratch.name,
    ]);
    return Number(rows[0].n);
  };

  /** Runs `work` in a short session of the replicas' database (in their schema). */
  const inDatabase = async <T>(work: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ connectionString: scratch.url, options: `-c search_path=${schema}` });
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  };

  /** Statements that read `api_keys` (each key lookup is one scan). */
  const keyLookups = async (): Promise<number> => {
    const { rows } = await inDatabase((c) =>
      c.query(
        `SELECT (seq_scan + coalesce(idx_scan, 0))::bigint AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'api_keys'`,
        [schema],
      ),
    );
    return Number(rows[0].n);
  };

  beforeAll(async () => {
    scratch = await createScratchDatabase('rate_limit_');
    // On the server's own database: it watches the scratch one's sessions and statistics.
    admin = new Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    const db = new DataSource(
      dataSourceOptions({
        DATABASE_URL: scratch.url,
        DATABASE_SCHEMA: schema,
        DATABASE_POOL_SIZE: 2,
        DATABASE_MIGRATE: true,
        DATABASE_QUERY_TIMEOUT_MS: 60_000,
        TASK_BUNDLE_SIZE: 100,
      }),
    );
    await db.initialize();
    await runMigrations(db, schema);
    await db.destroy();
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll(15_000);
    await admin?.end();
    await scratch?.drop();
    await deleteTopology(buildTopology(messaging)).catch(() => undefined);
  }, 60_000);

  it('admits one key its limit once across both replicas, not once per replica', async () => {
    const limit = 60;
    const [a, b] = await startPair({ RATE_LIMIT_PER_MINUTE: String(limit) });
    const key = await a.newKey('alice');
    const pair = [a, b];
    const answers = await spread(2 * limit, 6, (i) =>
      pair[i % 2].call('/v1/tasks', key).then((r) => ({ ...r, replica: i % 2 })),
    );
    const admitted = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    console.log(
      `limit ${limit}: ${admitted.length} of ${answers.length} requests admitted across 2 replicas ` +
        `(${admitted.filter((r) => r.replica === 0).length} by one, ${admitted.filter((r) => r.replica === 1).length} by the other)`,
    );
    expect(admitted.length + limited.length).toBe(answers.length);
    expect(Math.abs(admitted.length - limit)).toBeLessThanOrEqual(limit * 0.1);
    // Both replicas served the key.
    expect(admitted.some((r) => r.replica === 0) && admitted.some((r) => r.replica === 1)).toBe(true);
    for (const r of limited) {
      expect(r.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED' });
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
    }
    await stopAll();
    // Stopped replicas gave back every token they did not spend: what stays counted is what was
    // admitted (and nothing for the address: alice's first lookups gave their hits back).
    const counted = await inDatabase((c) =>
      c.query(
        `SELECT key, sum(hits)::int AS hits FROM rate_limit_counters WHERE key <> 'default:key:env' GROUP BY key ORDER BY key`,
      ),
    );
    expect(counted.rows.map((r) => [r.key.replace(/key:.*/, 'key:alice'), r.hits])).toEqual([
      ['default:key:alice', admitted.length],
      ['unauthenticated:ip:127.0.0.1', 0],
    ]);
  }, 120_000);

  it('limits unknown keys per client address across both replicas, without a database round trip per request', async () => {
    const limit = 20;
    const requests = 3000;
    await stopAll();
    const lookupsBefore = await keyLookups();
    // The session keyLookups opened must be gone (and counted) before the baseline.
    await stopAll();
    const before = await committed();

    const [a, b] = await startPair({
      RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: String(limit),
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    const pair = [a, b];
    // A real key, used once on each replica (each looks it up once and keeps it a few seconds).
    const key = await a.newKey('bob');
    for (const r of pair) expect((await r.call('/v1/tasks', key)).status).toBe(200);

    const burstStart = Date.now();
    const answers = await spread(requests, 8, (i) =>
      pair[i % 2].call('/v1/tasks', `tsk_unknown_${randomBytes(12).toString('hex')}`),
    );
    const burstMs = Date.now() - burstStart;
    // Afterwards, on both replicas: the address's budget is spent, with or without a key, while a key
    // the replicas know goes on working from the same address, and probes stay exempt.
    const after: Record<string, number>[] = [];
    for (const r of pair) {
      after.push({
        missing: (await r.call('/v1/tasks', null)).status,
        unknown: (await r.call('/v1/tasks', `tsk_unknown_${randomBytes(12).toString('hex')}`)).status,
        known: (await r.call('/v1/tasks', key)).status,
        probe: (await r.call('/health/live', null)).status,
      });
    }
    await stopAll();
    const transactions = (await committed()) - before;
    const lookups = (await keyLookups()) - lookupsBefore;

    const unauthorized = answers.filter((r) => r.status === 401).length;
    const limited = answers.filter((r) => r.status === 429);
    console.log(
      `unknown keys, limit ${limit} per address: ${unauthorized} answered 401 and ${limited.length} answered 429 ` +
        `across 2 replicas in ${burstMs} ms; these and 11 other requests cost ${transactions} transactions (both replicas' whole lives, start-up ` +
        `and background work included) and ${lookups} key lookups`,
    );
    expect(unauthorized + limited.length).toBe(requests);
    expect(Math.abs(unauthorized - limit)).toBeLessThanOrEqual(limit * 0.1);
    expect(limited[0].body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED' });
    expect(Number(limited[0].retryAfter)).toBeGreaterThan(0);
    expect(Number(limited[0].retryAfter)).toBeLessThanOrEqual(60);
    expect(after).toEqual([0, 1].map(() => ({ missing: 429, unknown: 429, known: 200, probe: 200 })));
    // Every lookup answered a request with 401 or found bob's key (once per replica, and again on a
    // replica whose 10-s cache of it ran out during the burst): none for a limited request.
    expect(lookups - unauthorized).toBeGreaterThanOrEqual(2);
    expect(lookups - unauthorized).toBeLessThanOrEqual(4);
    expect(transactions).toBeLessThan(requests / 10);
  }, 180_000);
});
