// pg-boss 12 on the local PostgreSQL, in its own schema: insert() in batches, work() with
// batchSize 100 and localConcurrency 2, LISTEN/NOTIFY wake-ups. Before timing, the job table is
// pre-loaded with as many jobs as the timed run has and ANALYZEd (the consumer then drains them as
// its warm-up): with statistics from an empty table PostgreSQL plans each fetch as a scan of every
// job (see shared/notes/toolchain.md) and pg-boss runs about 10x slower.
import { PgBoss } from 'pg-boss';
import pg from 'pg';

const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks';
const BATCH = 100;
const LOCAL_CONCURRENCY = Number(process.env.PGBOSS_LOCAL_CONCURRENCY ?? 4);
const boss = (cfg, extra = {}) => new PgBoss({ connectionString: PG, schema: cfg.schema, schedule: false, ...extra });

export const services = () => ['postgres'];
export const describe = () =>
  `pg-boss: insert() 1,000 per call (4 in flight), one consumer process, work() batchSize ${BATCH} x localConcurrency ${LOCAL_CONCURRENCY}, notify queue + useListenNotify, polling 0.5 s (also the notify backstop: with its 30 s default, single sends right after a burst sat for seconds although NOTIFY was on), burstWhenBatchFull; job table pre-loaded with N jobs and ANALYZEd before timing`;

export async function prepare({ id, jobs }) {
  const cfg = { schema: `bench_pgboss_${id}`, queue: 'bench' };
  const b = boss(cfg, { supervise: false });
  b.on('error', (e) => console.error(e));
  await b.start();
  await b.createQueue(cfg.queue, { notify: true });
  for (let i = 0; i < jobs; i += 1000) {
    const n = Math.min(1000, jobs - i);
    await b.insert(
      cfg.queue,
      Array.from({ length: n }, (_, k) => ({ data: { i: i + k, t: 0 } })),
    );
  }
  await b.stop({ graceful: false });
  const c = new pg.Client(PG);
  await c.connect();
  const { rows } = await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [cfg.schema]);
  for (const r of rows) await c.query(`ANALYZE ${cfg.schema}."${r.tablename}"`);
  await c.end();
  return { cfg, preloaded: jobs };
}

export async function cleanup(cfg) {
  const c = new pg.Client(PG);
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${cfg.schema} CASCADE`);
  await c.end();
}

export async function producer(cfg) {
  const b = boss(cfg, { supervise: false, migrate: false });
  b.on('error', (e) => console.error(e));
  await b.start();
  return {
    sendBatch: (items) =>
      b.insert(
        cfg.queue,
        items.map((data) => ({ data })),
      ),
    sendOne: (item) => b.send(cfg.queue, item),
    close: () => b.stop({ graceful: false }),
  };
}

export async function consumer(cfg, onStart, onDone) {
  const b = boss(cfg, { migrate: false, useListenNotify: true });
  b.on('error', (e) => console.error(e));
  await b.start();
  await b.work(
    cfg.queue,
    {
      batchSize: BATCH,
      localConcurrency: LOCAL_CONCURRENCY,
      pollingIntervalSeconds: 0.5,
      notifyPollingIntervalSeconds: 0.5,
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      for (const j of jobs) onStart(j.data);
      onDone(jobs.length); // pg-boss completes the batch after this returns; finishedAt() waits for that
    },
  );
  return { close: () => b.stop({ graceful: false }) };
}

/** Truth from the table: once `total` jobs are completed, the time the last one was. */
export async function finishedAt(cfg, total) {
  const c = new pg.Client(PG);
  await c.connect();
  try {
    for (;;) {
      const { rows } = await c.query(
        `SELECT count(*)::int AS n, extract(epoch FROM max(completed_on)) * 1000 AS at FROM ${cfg.schema}.job WHERE name = $1 AND state = 'completed'`,
        [cfg.queue],
      );
      if (rows[0].n >= total) return Number(rows[0].at);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await c.end();
  }
}

/** started_on - created_on (ms) of the given jobs, both from the database's clock. */
export async function latencies(cfg, sent) {
  const c = new pg.Client(PG);
  await c.connect();
  try {
    const { rows } = await c.query(
      `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM ${cfg.schema}.job WHERE name = $1 AND id = ANY($2::uuid[])`,
      [cfg.queue, sent.map(([id]) => id)],
    );
    return { db: rows.map((r) => Number(r.ms)) };
  } finally {
    await c.end();
  }
}
