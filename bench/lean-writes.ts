/**
 * What migration 1764700000000 (libs/tasks/src/lib/migrations/1764700000000-lean-task-writes.ts) and
 * UUIDv7 task ids change per task, measured in PostgreSQL itself. The real statements of the state
 * machine (TaskStateMachine.createMany, claimMany, heartbeatMany, succeedMany), on `--tasks` tasks a
 * round, in batches as the api and workers send them (1,000 per submit, 200 per claim, heartbeat
 * round and completion), in one scratch schema per variant:
 *   before  the schema before the migration, random UUIDv4 ids (node:crypto randomUUID), as until now;
 *   ids     the schema before the migration, UUIDv7 ids (newTaskId): the ids' share of the change;
 *   schema  the migrated schema, UUIDv4 ids: the migration's share;
 *   after   the migrated schema, UUIDv7 ids: this release.
 * `--prefill N` first puts N finished tasks (4 events each) in every variant's tables, ids of their
 * variant's kind in creation order, then VACUUM ANALYZE: a table that has been in use.
 * Variants take turns within a round (the order rotates each round), so load from elsewhere spreads
 * over all of them; figures are the median and range over rounds.
 *
 * Per phase and task: wall time; CPU of the one backend running the statements (/proc, pool of one
 * connection); from pg_stat_statements (reset before each phase, summed over the top-level
 * statements), execution time, WAL bytes and full-page images, buffers dirtied; notifications on the
 * schema's task_updates channel. Each phase starts after a CHECKPOINT, so a page touched in it writes
 * its full image once, as the first touch after each checkpoint does in production.
 *
 * Needs a PostgreSQL of its own (WAL and statements are counted server-wide) with pg_stat_statements
 * loaded, for example a private cluster:
 *   initdb -D DIR --auth=trust -U postgres; pg_ctl -D DIR -o "-p 5544 -c shared_preload_libraries=pg_stat_statements
 *     -c autovacuum=off -c shared_buffers=128MB" start; psql -p 5544 -c 'CREATE EXTENSION pg_stat_statements'
 * Run:
 *   npx ts-node --transpile-only -P chaos/tsconfig.json -r ./chaos/lib/register-paths.ts bench/lean-writes.ts \
 *     --url postgres://postgres@127.0.0.1:5544/postgres --tasks 20000 --rounds 5 [--prefill 1000000] [--heartbeats 10]
 *     [--variants before,ids,schema,after] [--out FILE]
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../libs/tasks/src/lib/data-source.options';
import { TASKS_MIGRATIONS } from '../libs/tasks/src/lib/migrations';
import { LeanTaskWrites1764700000000 } from '../libs/tasks/src/lib/migrations/1764700000000-lean-task-writes';
import { newTaskId } from '../libs/tasks/src/lib/task-id';
import { TaskStateMachine } from '../libs/tasks/src/lib/task-state-machine';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5544/postgres' },
    tasks: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    prefill: { type: 'string', default: '0' },
    heartbeats: { type: 'string', default: '1' },
    variants: { type: 'string', default: 'before,ids,schema,after' },
    out: { type: 'string' },
  },
});
const URL = args.url as string;
const N = Number(args.tasks);
const ROUNDS = Number(args.rounds);
const PREFILL = Number(args.prefill);
/** Heartbeat rounds over every running task (a long task sends many: one every third of its lease). */
const HEARTBEATS = Number(args.heartbeats);
const SUBMIT_BATCH = 1000;
const WORK_BATCH = 200;
const LEASE_MS = 300_000;
const TICKS_PER_S = 100; // USER_HZ on Linux

interface Variant {
  name: string;
  migrated: boolean;
  id: () => string;
  /** SQL of the same kind of id for a row created at `at`, for the prefill. */
  idSql: (at: string) => string;
}
const V7_AT = (at: string) =>
  `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
     PLACING substring(int8send(floor(extract(epoch FROM ${at}) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid`;
const ALL_VARIANTS: Variant[] = [
  { name: 'before', migrated: false, id: randomUUID, idSql: () => 'gen_random_uuid()' },
  { name: 'ids', migrated: false, id: newTaskId, idSql: V7_AT },
  { name: 'schema', migrated: true, id: randomUUID, idSql: () => 'gen_random_uuid()' },
  { name: 'after', migrated: true, id: newTaskId, idSql: V7_AT },
];
const VARIANTS = (args.variants as string).split(',').map((n) => {
  const v = ALL_VARIANTS.find((x) => x.name === n);
  if (!v) throw new Error(`unknown variant ${n}`);
  return v;
});
const PHASES = ['create', 'claim', 'heartbeat', 'succeed'] as const;
type Phase = (typeof PHASES)[number];

interface Figures {
  wallUs: number;
  cpuUs: number;
  execUs: number;
  walBytes: number;
  fpiPer1000: number;
  dirtiedPer1000: number;
  notifications: number;
  notifyBytes: number;
}

interface Setup {
  variant: Variant;
  schema: string;
  db: DataSource;
  sm: TaskStateMachine;
  listener: Client;
  notes: { count: number; bytes: number };
}

const admin = new Client({ connectionString: URL });

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the line)
}

async function setUp(variant: Variant): Promise<Setup> {
  const schema = `lw_${variant.name}_${process.pid}`;
  const config = {
    DATABASE_URL: URL,
    DATABASE_SCHEMA: schema,
    DATABASE_POOL_SIZE: 1,
    DATABASE_MIGRATE: true,
    DATABASE_QUERY_TIMEOUT_MS: 600_000,
  };
  const upTo = TASKS_MIGRATIONS.indexOf(LeanTaskWrites1764700000000);
  const migrations = variant.migrated ? TASKS_MIGRATIONS : TASKS_MIGRATIONS.slice(0, upTo);
  const db = new DataSource({
    ...dataSourceOptions(config),
    migrations,
    extra: { ...dataSourceOptions(config).extra, idleTimeoutMillis: 0 },
  });
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await db.initialize();
  await db.runMigrations({ transaction: 'each' });
  if (PREFILL > 0) await prefill(db, variant);
  const listener = new Client({ connectionString: URL });
  await listener.connect();
  const notes = { count: 0, bytes: 0 };
  listener.on('notification', (n) => {
    notes.count++;
    notes.bytes += Buffer.byteLength(n.payload ?? '', 'utf8');
  });
  await listener.query(`LISTEN "${schema}.task_updates"`);
  return { variant, schema, db, sm: new TaskStateMachine(db), listener, notes };
}

/** PREFILL finished tasks over the 30 days before now, 4 events each, ids of the variant's kind. */
async function prefill(db: DataSource, variant: Variant): Promise<void> {
  const t0 = Date.now();
  const chunk = 500_000;
  for (let from = 0; from < PREFILL; from += chunk) {
    const to = Math.min(PREFILL, from + chunk);
    await db.query(
      `WITH x AS (
         SELECT i, now() - ($3 - i)::float8 / $3 * interval '30 days' AS at FROM generate_series($1::bigint, $2::bigint - 1) i),
       ins AS (
         INSERT INTO tasks (id, owner, type, payload, status, attempt, max_attempts, timeout_ms, progress_percent, result,
                            created_at, updated_at, started_at, finished_at)
         SELECT ${variant.idSql('x.at')}, 'owner-' || i % 1000, 'demo.sleep', '{"ms":1}', 'succeeded', 1, 3, 60000, 100,
                '{"ok":true}', at, at, at, at FROM x ORDER BY i
         RETURNING id, created_at)
       INSERT INTO task_events (task_id, at, from_status, to_status, attempt, actor)
       SELECT ins.id, ins.created_at, s.f, s.t, s.a, 'prefill' FROM ins
        CROSS JOIN (VALUES (NULL, 'queued', 0), ('queued', 'running', 1), ('running', 'succeeded', 1)) s(f, t, a)
        ORDER BY ins.created_at`,
      [from, to, PREFILL],
    );
  }
  await db.query(`VACUUM ANALYZE tasks`);
  await db.query(`VACUUM ANALYZE task_events`);
  console.error(`  prefilled ${variant.name}: ${PREFILL} tasks in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

function batches<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `per`: how many task-steps the phase made (N, or N x HEARTBEATS). */
async function measure(s: Setup, per: number, run: () => Promise<void>): Promise<Figures> {
  await admin.query(`CHECKPOINT`);
  const [{ pid }] = await s.db.query(`SELECT pg_backend_pid() AS pid`);
  await admin.query(`SELECT pg_stat_statements_reset()`);
  const notesBefore = { ...s.notes };
  const cpu0 = cpuTicks(pid);
  const t0 = process.hrtime.bigint();
  await run();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu1 = cpuTicks(pid);
  const [again] = await s.db.query(`SELECT pg_backend_pid() AS pid`);
  if (again.pid !== pid) throw new Error('the pool changed its connection during a phase');
  // Notifications are delivered after the commits: a marker sent last arrives after all of them.
  const marker = randomUUID();
  await new Promise<void>((resolve, reject) => {
    const onNote = (n: { channel: string; payload?: string }) => {
      if (n.payload === marker) {
        s.listener.off('notification', onNote);
        resolve();
      }
    };
    s.listener.on('notification', onNote);
    admin.query(`SELECT pg_notify($1, $2)`, [`${s.schema}.task_updates`, marker]).catch(reject);
  });
  s.notes.count--; // the marker
  s.notes.bytes -= marker.length;
  const {
    rows: [st],
  } = await admin.query(
    `SELECT coalesce(sum(total_exec_time), 0)::float8 AS exec_ms, coalesce(sum(wal_bytes), 0)::float8 AS wal_bytes,
            coalesce(sum(wal_fpi), 0)::float8 AS fpi, coalesce(sum(shared_blks_dirtied), 0)::float8 AS dirtied
       FROM pg_stat_statements
      WHERE toplevel AND query !~* 'pg_stat_statements|pg_backend_pid|pg_notify|CHECKPOINT'`,
  );
  return {
    wallUs: wallNs / 1000 / per,
    cpuUs: (((cpu1 - cpu0) / TICKS_PER_S) * 1e6) / per,
    execUs: (st.exec_ms * 1000) / per,
    walBytes: st.wal_bytes / per,
    fpiPer1000: (st.fpi * 1000) / per,
    dirtiedPer1000: (st.dirtied * 1000) / per,
    notifications: s.notes.count - notesBefore.count,
    notifyBytes: s.notes.bytes - notesBefore.bytes,
  };
}

async function round(s: Setup): Promise<Record<Phase, Figures>> {
  const ids = Array.from({ length: N }, () => s.variant.id());
  const rows = ids.map((id) => ({
    id,
    owner: `owner-${id.charCodeAt(35) % 50}`,
    type: 'demo.sleep',
    payload: { ms: 1 },
    maxAttempts: 3,
    timeoutMs: 60_000,
    start: true,
    actor: 'owner:bench',
  }));
  const out = {} as Record<Phase, Figures>;
  out.create = await measure(s, N, async () => {
    for (const b of batches(rows, SUBMIT_BATCH)) await s.sm.createMany(b);
  });
  await s.db.query(`DELETE FROM outbox`); // as the relay would, once sent
  // Deliveries arrive in the order they were published; a worker claims a prefetch batch at a time.
  out.claim = await measure(s, N, async () => {
    for (const b of batches(ids, WORK_BATCH)) await s.sm.claimMany(b, 'worker-1', LEASE_MS);
  });
  out.heartbeat = await measure(s, N * HEARTBEATS, async () => {
    for (let h = 0; h < HEARTBEATS; h++)
      for (const b of batches(ids, WORK_BATCH))
        await s.sm.heartbeatMany(
          b.map((id) => ({ id, token: 1 })),
          'worker-1',
          LEASE_MS,
        );
  });
  out.succeed = await measure(s, N, async () => {
    for (const b of batches(ids, WORK_BATCH))
      await s.sm.succeedMany(
        b.map((id) => ({ id, token: 1, result: { ok: true } })),
        'worker-1',
      );
  });
  const [done] = await s.db.query(
    `SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`,
    [ids],
  );
  if (done.n !== N) throw new Error(`${s.variant.name}: ${done.n} of ${N} tasks succeeded`);
  await s.db.query(`DELETE FROM outbox`);
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x: number, d = 1) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const cell = (xs: number[], d = 1) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})`;

async function indexBytes(s: Setup): Promise<Record<string, number>> {
  const rows: { name: string; bytes: string }[] = await s.db.query(
    `SELECT c.relname AS name, pg_relation_size(c.oid)::text AS bytes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid IN ('tasks'::regclass, 'task_events'::regclass) ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}

async function main(): Promise<void> {
  await admin.connect();
  const setups: Setup[] = [];
  for (const v of VARIANTS) setups.push(await setUp(v));
  const results = new Map<string, Record<Phase, Figures>[]>(VARIANTS.map((v) => [v.name, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const order = setups.map((_, i) => setups[(i + r) % setups.length]);
      for (const s of order) {
        results.get(s.variant.name)?.push(await round(s));
        console.error(`  round ${r + 1}/${ROUNDS} ${s.variant.name} done`);
      }
    }
    const sizes: Record<string, Record<string, number>> = {};
    for (const s of setups) sizes[s.variant.name] = await indexBytes(s);
    const metrics: [keyof Figures, string, number][] = [
      ['wallUs', 'wall µs/task', 1],
      ['cpuUs', 'backend CPU µs/task', 1],
      ['execUs', 'exec µs/task (pg_stat_statements)', 1],
      ['walBytes', 'WAL bytes/task', 0],
      ['fpiPer1000', 'full-page images /1000 tasks', 1],
      ['dirtiedPer1000', 'buffers dirtied /1000 tasks', 0],
      ['notifications', 'notifications', 0],
    ];
    const lines: string[] = [];
    lines.push(
      `${N} tasks a round, ${ROUNDS} rounds, prefill ${PREFILL}, ${HEARTBEATS} heartbeat round(s) (heartbeat figures per heartbeat); median (min-max) over rounds; ${new Date().toISOString()}`,
    );
    for (const phase of PHASES) {
      lines.push(
        '',
        `### ${phase}`,
        '',
        `| metric | ${VARIANTS.map((v) => v.name).join(' | ')} |`,
        `| --- |${VARIANTS.map(() => ' --- |').join('')}`,
      );
      for (const [key, label, d] of metrics)
        lines.push(
          `| ${label} | ${VARIANTS.map((v) =>
            cell(
              (results.get(v.name) ?? []).map((x) => x[phase][key]),
              d,
            ),
          ).join(' | ')} |`,
        );
    }
    lines.push('', '### index sizes at the end (bytes)', '', '```', JSON.stringify(sizes, null, 1), '```');
    console.log(lines.join('\n'));
    if (args.out)
      writeFileSync(
        args.out as string,
        JSON.stringify({ N, ROUNDS, PREFILL, results: Object.fromEntries(results), sizes }, null, 1),
      );
  } finally {
    for (const s of setups) {
      await s.listener.end();
      await s.db.destroy();
      await admin.query(`DROP SCHEMA IF EXISTS "${s.schema}" CASCADE`);
    }
    await admin.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
