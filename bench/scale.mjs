// The scale rows of the performance issue, for our system only (run by run.mjs with --scale):
//   running   N long demo.sleep tasks running at once on 2 workers: heartbeat load on PostgreSQL,
//             worker memory per in-flight task, a worker's RSS at 1,000 in flight
//   backlog   N tasks queued before any worker starts: drain rate and worker memory while draining
//   finished  a tasks table holding N finished tasks: read latencies, and the submit rate against
//             the rate on an empty table; then the retention job on it: its index built CONCURRENTLY,
//             its cleanup rate alone and while submits run, and the submit rate during cleanup
// Each scenario runs on its own schema and namespace (systems/ours.mjs Deployment) and removes
// them afterwards, also when it fails.
import amqp from 'amqplib';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { bulk, fmt, median, now, pcts, ProcessMeter, sleep, waitUntil } from './measure.mjs';
import * as ours from './systems/ours.mjs';

export const SCENARIOS = ['running', 'backlog', 'finished'];
/** The issue's sizes; a smaller one is reported as such. */
export const ISSUE_SIZES = { running: 10_000, backlog: 1_000_000, finished: 10_000_000 };
const WORKERS = 2;
const WORKER_NAMES = Array.from({ length: WORKERS }, (_, k) => `worker-${k + 1}`);
const BATCH = 1000; // the api's batch maximum
const INFLIGHT = 4; // batch requests in flight, as in the main bench
const LONG_TASK_MS = 15 * 60_000; // outlives ramp-up and window; under RabbitMQ's default 30-min consumer_timeout
const POINT = 1000; // in-flight tasks per worker of the RSS target
const RSS_TARGET_MB = 150;
const RATIO_TARGET = 0.8;
const P99_TARGET_MS = 20;
const REFERENCE_RUN = 20_000; // tasks of the empty-queue and empty-table reference runs
const SMALL_DRAIN = 50_000; // the like-for-like reference backlog (at most the measured one): long enough to outweigh warm-up
const WARMUP = 1000;
const SLICE_S = 30;
const FLAT = 1.1; // "stays flat": the last slice's peak RSS within 10% of the first slice's
const FILL_CHUNK = 1_000_000;
const BENCH_EVERY = 100; // every 100th finished row is the bench owner's (100,000 of 10,000,000)
const OWNERS = 1000; // the other rows' owners
const READS_BY_ID = 2000;
const READS_LIST = 500;
const READS_WARMUP = 200;
const SUBMIT_RUNS = 3; // the api's batch path is ~3x faster after its first 20,000 tasks (JIT): warm up with one run, then a median
const LONG_TASK = { type: 'demo.sleep', payload: { ms: LONG_TASK_MS } };
const DAY_MS = 86_400_000;
const RETENTION_DAYS = 15; // the fill's finished_at spans 30 days: about half of the rows are past it
const CLEANUP_ALONE_S = 60; // the cleanup measured with nothing else running, at most this long
const TERMINAL = `('succeeded','failed','cancelled')`;

const mb = (x) => `${fmt(x)} MB`;
const verdict = (met) => (met === null ? 'not judged' : met ? '**met**' : '**missed**');
const target = (label, met, figure) => `${label}: ${verdict(met)} (${figure})`;

/** Samples the named processes' memory every second for `ms`, or until `stop()` answers true. */
async function watchMemory(meter, names, ms, stop = async () => false) {
  const samples = [];
  const end = now() + ms;
  for (;;) {
    samples.push({ t: now(), mb: meter.current(names) });
    if (now() >= end || (await stop())) return samples;
    await sleep(Math.min(1000, Math.max(0, end - now())));
  }
}
const memOf = (samples, name) => {
  const xs = samples.map((s) => s.mb[name]);
  return { min: Math.min(...xs), max: Math.max(...xs), median: median(xs), last: xs.at(-1) };
};

/** Counters of the scenario's tasks table, the database and the WAL (cumulative; take differences). */
async function pgCounters(db, schema) {
  const { rows } = await db.query(
    `SELECT n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot, n_tup_ins::float8 AS ins,
            seq_scan::float8 AS "seqScan", seq_tup_read::float8 AS "seqRead", coalesce(idx_scan, 0)::float8 AS "idxScan",
            n_dead_tup::float8 AS dead, greatest(last_analyze, last_autoanalyze) AS analyzed,
            (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS xact,
            pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS wal
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'tasks'`,
    [schema],
  );
  return { ...rows[0], t: now() };
}
const perSecond = (a, b) =>
  Object.fromEntries(
    Object.keys(a)
      .filter((k) => typeof a[k] === 'number' && k !== 't')
      .map((k) => [k, ((b[k] - a[k]) * 1000) / (b.t - a.t)]),
  );
// the planner's row estimates for the tasks table come from ANALYZE; with autovacuum off nothing runs it
const analyzed = (c) =>
  `tasks table statistics: ${c.analyzed ? `last ANALYZE ${c.analyzed.toISOString()}` : 'never analyzed'}`;
const cores = (meter, c0, names) => {
  const d = ProcessMeter.diff(c0.cpu, meter.cpu());
  const s = (now() - c0.t) / 1000;
  return names.map((n) => `${n} ${fmt(d[n] / s, 2)}`).join(', ') + `, rest of the machine ${fmt(d.other / s, 2)}`;
};
const cpuMark = (meter) => ({ cpu: meter.cpu(), t: now() });

const outboxEmpty = (db) =>
  waitUntil(
    'an empty outbox',
    async () => (await db.query(`SELECT NOT EXISTS (SELECT FROM outbox) AS e`)).rows[0].e,
    120_000,
    500,
  );

/** Tasks running now, in total and per worker (by lease owner). */
async function runningBy(db, cfg) {
  const { rows } = await db.query(
    `SELECT lease_owner, count(*)::int AS n FROM tasks WHERE status = 'running' GROUP BY 1`,
  );
  const by = Object.fromEntries(
    WORKER_NAMES.map((w) => [w, rows.find((r) => r.lease_owner === `${cfg.ns}-${w}`)?.n ?? 0]),
  );
  return { total: rows.reduce((s, r) => s + r.n, 0), by };
}

// (a) -----------------------------------------------------------------------------------------
async function running({ d, db, meter }, { size, windowS }) {
  const perWorker = Math.ceil(size / WORKERS);
  await d.startApi();
  await d.startWorkers(WORKERS, { WORKER_CONCURRENCY: String(perWorker) });
  d.cfg.key = await d.createKey('bench');
  const idle = await watchMemory(meter, WORKER_NAMES, 15_000); // start-up garbage comes and goes: medians below
  const p = await ours.producer(d.cfg, LONG_TASK);
  let submitted = 0;
  const reach = async (n) => {
    const t0 = now();
    await bulk(p, { n: n - submitted, batch: BATCH, inflight: INFLIGHT });
    submitted = n;
    await waitUntil(`${n} tasks running`, async () => (await runningBy(db, d.cfg)).total >= n, 60_000 + n * 20, 500);
    return { ...(await runningBy(db, d.cfg)), seconds: (now() - t0) / 1000 };
  };
  // first the target's point, 1,000 per worker (fewer when the run is smaller), then the full count
  const pointPer = Math.min(POINT, perWorker);
  const atPoint = await reach(pointPer * WORKERS);
  const pointMem = await watchMemory(meter, WORKER_NAMES, 15_000); // three heartbeats at the default lease
  const atFull = await reach(size);
  console.log(`scale running: ${size} running; measuring ${windowS} s`);

  const s0 = await pgCounters(db, d.cfg.schema);
  const c0 = cpuMark(meter);
  const loaded = await watchMemory(meter, WORKER_NAMES, windowS * 1000);
  const busy = cores(meter, c0, ['postgres', 'rabbitmq', ...WORKER_NAMES, 'api']);
  const s1 = await pgCounters(db, d.cfg.schema);
  const rate = perSecond(s0, s1);
  const {
    rows: [end],
  } = await db.query(
    `SELECT count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE attempt > 1)::int AS reclaimed FROM tasks`,
  );
  const byWorker = (await runningBy(db, d.cfg)).by;
  p.close();

  const pointFigs = WORKER_NAMES.map(
    (w) => `${w} ${mb(memOf(pointMem, w).max)} at ${fmt(atPoint.by[w])} in flight`,
  ).join(', ');
  const pointMet = pointPer < POINT ? null : WORKER_NAMES.every((w) => memOf(pointMem, w).max < RSS_TARGET_MB);
  const perTask = WORKER_NAMES.map((w) => {
    const [i, pt, l] = [memOf(idle, w), memOf(pointMem, w), memOf(loaded, w)];
    // between two loaded points when there are two: both have garbage collection going on, idle has not
    const [base, baseN, against] =
      byWorker[w] > atPoint.by[w]
        ? [pt.median, atPoint.by[w], `from ${fmt(atPoint.by[w])}`]
        : [i.median, 0, 'against idle'];
    return `${w} idle ${mb(i.median)}, ${fmt(atPoint.by[w])} in flight ${mb(pt.median)}, ${fmt(byWorker[w])} in flight ${mb(l.median)} (max ${mb(l.max)}): ${fmt(((l.median - base) * 1024) / (byWorker[w] - baseN), 1)} KB per task (${against})`;
  });
  const lease = process.env.WORKER_LEASE_MS
    ? `WORKER_LEASE_MS ${process.env.WORKER_LEASE_MS}`
    : 'WORKER_LEASE_MS at its default';
  return {
    title: `(a) ${fmt(size)} long tasks running at once`,
    measured: `${fmt(size)} demo.sleep tasks of ${LONG_TASK_MS / 60_000} min submitted in batches to the api and 2 workers (WORKER_CONCURRENCY ${fmt(perWorker)} each, ${lease}, everything else default); once all were running, ${windowS} s of heartbeat load; first a point at ${fmt(pointPer)} per worker (RSS max over 15 s)`,
    targets: [
      target(
        `worker RSS < ${RSS_TARGET_MB} MB at ${fmt(POINT)} in flight`,
        pointMet,
        pointPer < POINT ? `only ${fmt(pointPer)} per worker in this run: ${pointFigs}` : pointFigs,
      ),
    ],
    figures: [
      `ramp-up: ${fmt(atPoint.total)} running ${fmt(atPoint.seconds, 1)} s after their first submit` +
        (size > atPoint.total
          ? `, the other ${fmt(size - atPoint.total)} ${fmt(atFull.seconds, 1)} s after theirs`
          : ''),
      `tasks rows updated ${fmt(rate.upd)}/s (HOT ${fmt((100 * rate.hot) / rate.upd)}%; dead rows ${fmt(s0.dead)} → ${fmt(s1.dead)}), i.e. each task's lease extended every ${fmt(size / rate.upd, 1)} s`,
      `${fmt(rate.xact)} commits/s (whole database)`,
      `WAL ${fmt(rate.wal / 2 ** 20, 2)} MB/s (whole server)`,
      `cores busy: ${busy}`,
      `worker RSS: ${perTask.join('; ')}`,
      `at the end ${fmt(end.running)} still running, ${fmt(end.reclaimed)} claimed more than once (a lost lease would show here)`,
      analyzed(s1),
    ],
  };
}

// (b) -----------------------------------------------------------------------------------------
/**
 * Queues n tasks with no worker running, waits until the relay has put them all in the work queue,
 * then starts the workers and measures the drain for `windowS` or until drained; stops the workers.
 */
async function drain({ d, db, meter }, { p, ready, n, windowS }) {
  const sub = await bulk(p, { n, batch: BATCH, inflight: INFLIGHT });
  // every message in the work queue first (cheap to ask), then the outbox rows of the last confirms gone
  await waitUntil(`the relay to publish ${n} tasks`, async () => (await ready()) >= n, 600_000 + n, 1000);
  await outboxEmpty(db);
  const relayedS = (now() - sub.startAt) / 1000;
  const queued = await ready();
  const apiRss = meter.current(['api']).api;
  console.log(`scale backlog: ${queued} queued after ${fmt(relayedS, 1)} s; draining`);

  const s0 = await pgCounters(db, d.cfg.schema);
  const spawnAt = now();
  await d.startWorkers(WORKERS, { WORKER_CONCURRENCY: String(ours.WORKER_CONCURRENCY) });
  const t0 = now(); // the window starts with both workers consuming; what finished before is start-up
  const c0 = cpuMark(meter);
  let drained = false;
  const active = async () =>
    (await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status IN ('new','queued','running','retrying')`))
      .rows[0].n;
  const samples = await watchMemory(
    meter,
    WORKER_NAMES,
    windowS * 1000,
    async () => (drained = (await ready()) === 0 && (await active()) === 0),
  );
  const busy = cores(meter, c0, ['postgres', 'rabbitmq', ...WORKER_NAMES, 'api']);
  const s1 = await pgCounters(db, d.cfg.schema);
  await d.stop(0, WORKER_NAMES); // a drain not finished in the window ends here; its rest goes with the queue
  const {
    rows: [last],
  } = await db.query(`SELECT extract(epoch FROM max(finished_at)) * 1000 AS at FROM tasks WHERE status = 'succeeded'`);
  const t1 = Math.max(t0 + 1000, drained ? Number(last.at) : now());
  // succeeded per slice by finished_at (the database's clock is this machine's): no polling load during the window
  const { rows } = await db.query(
    `SELECT floor((extract(epoch FROM finished_at) * 1000 - $1) / ($4 * 1000))::int AS slice, count(*)::int AS n
       FROM tasks WHERE status = 'succeeded' AND finished_at >= to_timestamp($2 / 1000.0) AND finished_at <= to_timestamp($3 / 1000.0)
      GROUP BY 1 ORDER BY 1`,
    [t0, spawnAt, t1, SLICE_S],
  );
  const slices = [];
  for (let k = 0; k * SLICE_S * 1000 < t1 - t0; k++) {
    const from = t0 + k * SLICE_S * 1000;
    const to = Math.min(t1, from + SLICE_S * 1000);
    const mem = samples.filter((x) => x.t >= from && x.t <= to);
    slices.push({
      k,
      seconds: (to - from) / 1000,
      n: rows.find((r) => r.slice === k)?.n ?? 0,
      mem: Object.fromEntries(WORKER_NAMES.map((w) => [w, mem.length ? memOf(mem, w) : undefined])),
    });
  }
  const done = rows.filter((r) => r.slice >= 0).reduce((x, r) => x + r.n, 0);
  return {
    n,
    rate: (done * 1000) / (t1 - t0),
    slices,
    figures: [
      `submitted at ${fmt((n * 1000) / (sub.endAt - sub.startAt))}/s accepted; all ${fmt(queued)} in the work queue ${fmt(relayedS, 1)} s after the first submit; api RSS then ${mb(apiRss)}`,
      `workers ready ${fmt((t0 - spawnAt) / 1000, 1)} s after their start (${fmt(rows.filter((r) => r.slice < 0).reduce((x, r) => x + r.n, 0))} tasks done by then, not counted); ` +
        (drained
          ? `drained: all ${fmt(n)} succeeded ${fmt((t1 - t0) / 1000, 1)} s after both were ready`
          : `${fmt(done)} of ${fmt(n)} succeeded in the ${windowS}-s window (the rest went with the queue)`),
      `cores busy while draining: ${busy}`,
      ((r) =>
        `tasks table while draining: ${fmt(r.upd)} row updates/s, ${fmt(r.seqScan, 2)} sequential scans/s reading ${fmt(r.seqRead)} rows/s; ${fmt(s1.dead)} dead rows at the end; ${analyzed(s1).replace('tasks table ', '')}`)(
        perSecond(s0, s1),
      ),
    ],
  };
}

async function backlog(ctx, { size, windowS, emptyRate }) {
  const { d } = ctx;
  await d.startApi();
  d.cfg.key = await d.createKey('bench');
  const p = await ours.producer(d.cfg); // demo.sleep {ms: 0}, as in the main bench
  const conn = await amqp.connect(ours.AMQP);
  try {
    const ch = await conn.createChannel();
    const ready = async () => (await ch.checkQueue(`${d.cfg.ns}.work.demo.sleep`)).messageCount;
    let empty = emptyRate;
    if (!empty) {
      await d.startWorkers(WORKERS, { WORKER_CONCURRENCY: String(ours.WORKER_CONCURRENCY) });
      await bulk(p, { n: WARMUP, batch: BATCH, inflight: INFLIGHT });
      await ours.finishedAt(d.cfg, WARMUP, 300_000);
      const r = await bulk(p, { n: REFERENCE_RUN, batch: BATCH, inflight: INFLIGHT });
      const at = await ours.finishedAt(d.cfg, WARMUP + REFERENCE_RUN, 600_000);
      empty = {
        tput: (REFERENCE_RUN * 1000) / (at - r.startAt),
        source: `measured in this scenario first like ours' throughput phase: ${fmt(REFERENCE_RUN)} tasks end to end through the empty queue after a ${fmt(WARMUP)}-task warm-up`,
      };
      await d.stop(15_000, WORKER_NAMES);
    }
    // like for like: the same drain from a small backlog (the empty-queue rate includes submitting, a drain does not)
    const small = await drain(ctx, { p, ready, n: Math.min(SMALL_DRAIN, size), windowS: 600 });
    console.log(
      `scale backlog: empty-queue rate ${fmt(empty.tput)}/s, ${fmt(small.n)}-task drain ${fmt(small.rate)}/s; now ${size}`,
    );
    const big = await drain(ctx, { p, ready, n: size, windowS });

    const { slices } = big;
    const flat = WORKER_NAMES.map((w) => ({ w, first: slices[0].mem[w]?.max, last: slices.at(-1).mem[w]?.max }));
    const ratio = (x, y) => `${fmt(x)}/s against ${fmt(y)}/s = ${fmt((100 * x) / y)}%`;
    return {
      title: `(b) a backlog of ${fmt(size)} queued tasks`,
      measured: `${fmt(size)} demo.sleep {ms: 0} tasks submitted (${BATCH} per request, ${INFLIGHT} in flight) to the api with no worker running, relayed into the work queue; then 2 workers (WORKER_CONCURRENCY ${ours.WORKER_CONCURRENCY} each; the main bench runs ${ours.WORKERS}) started and the drain measured for ${windowS} s or until drained: succeeded per ${SLICE_S}-s slice (by finished_at), worker RSS every second. The same done first with a ${fmt(Math.min(SMALL_DRAIN, size))}-task backlog, in the same schema`,
      targets: [
        target(
          `drain rate ≥ ${RATIO_TARGET * 100}% of the empty-queue rate`,
          big.rate >= RATIO_TARGET * empty.tput,
          `${ratio(big.rate, empty.tput)}; empty-queue rate: ${empty.source}`,
        ),
        target(
          `the same against the drain of a ${fmt(small.n)}-task backlog (like for like)`,
          big.rate >= RATIO_TARGET * small.rate,
          ratio(big.rate, small.rate),
        ),
        target(
          `worker memory flat (last slice's peak within ${fmt((FLAT - 1) * 100)}% of the first's)`,
          slices.length < 2 ? null : flat.every((f) => f.last <= f.first * FLAT),
          slices.length < 2
            ? `one slice only, ${fmt(slices[0].seconds, 1)} s`
            : flat.map((f) => `${f.w} ${mb(f.first)} → ${mb(f.last)}`).join(', '),
        ),
      ],
      figures: big.figures,
      detail: [
        `| (b) drain of ${fmt(size)}, slice | tasks/s | ${WORKER_NAMES.map((w) => `${w} RSS MB min / max / last`).join(' | ')} |`,
        `| --- | ---: | ${WORKER_NAMES.map(() => '---').join(' | ')} |`,
        ...slices.map(
          (x) =>
            `| ${x.k * SLICE_S}-${fmt(x.k * SLICE_S + x.seconds)} s | ${fmt(x.n / x.seconds)} | ${WORKER_NAMES.map((w) => (x.mem[w] ? `${fmt(x.mem[w].min)} / ${fmt(x.mem[w].max)} / ${fmt(x.mem[w].last)}` : '-')).join(' | ')} |`,
        ),
      ],
    };
  } finally {
    p.close();
    await conn.close().catch(() => {});
  }
}

// (c) -----------------------------------------------------------------------------------------
/** Batch submits: tasks accepted per second over REFERENCE_RUN tasks, median of SUBMIT_RUNS runs (and each run's), and CPU per 1,000. */
async function submitRate(p, meter) {
  const runs = [];
  const c0 = meter.cpu();
  for (let i = 0; i < SUBMIT_RUNS; i++) {
    const r = await bulk(p, { n: REFERENCE_RUN, batch: BATCH, inflight: INFLIGHT });
    runs.push((REFERENCE_RUN * 1000) / (r.endAt - r.startAt));
  }
  const cpu = ProcessMeter.diff(c0, meter.cpu());
  const per1k = (k) => (cpu[k] * 1000) / (REFERENCE_RUN * SUBMIT_RUNS);
  return {
    rate: median(runs),
    runs,
    cpu: `CPU s per 1,000: api ${fmt(per1k('api'), 3)}, postgres ${fmt(per1k('postgres'), 3)}`,
  };
}
const rates = (r) => `${fmt(r.rate)}/s (${r.runs.map((x) => fmt(x)).join(', ')}; ${r.cpu})`;

/** Sequential GETs over one keep-alive connection: random ids of `owner`, then the first page of the list. */
async function reads(db, cfg, key, owner) {
  await outboxEmpty(db); // not while the relay still publishes the submits
  const { rows } = await db.query(`SELECT id FROM tasks WHERE owner = $1 ORDER BY random() LIMIT $2`, [
    owner,
    READS_BY_ID + READS_WARMUP,
  ]);
  const c = ours.client(cfg, key);
  const time = async (path) => {
    const t = now();
    const r = await c.request('GET', path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 200)}`);
    return now() - t;
  };
  try {
    for (const r of rows.slice(0, READS_WARMUP)) await time(`/v1/tasks/${r.id}`); // connection, JIT; ids not reused
    for (let i = 0; i < READS_WARMUP; i++) await time('/v1/tasks');
    const byId = [];
    for (const r of rows.slice(READS_WARMUP)) byId.push(await time(`/v1/tasks/${r.id}`));
    const list = [];
    for (let i = 0; i < READS_LIST; i++) list.push(await time('/v1/tasks'));
    return { byId: pcts(byId), list: pcts(list), n: byId.length };
  } finally {
    c.close();
  }
}
const p3 = (l) => `p50 ${fmt(l.p50, 1)} / p95 ${fmt(l.p95, 1)} / p99 ${fmt(l.p99, 1)} ms`;

/**
 * SQL of a UUIDv7 made at `at` (a timestamptz), as the api makes task ids (libs/tasks/src/lib/task-id.ts):
 * the unix time in ms in the first 48 bits, then version 7 and random bits (a v4's, whose variant bits
 * are already RFC 9562's; setting bits 52 and 53 turns its version nibble 4 into 7).
 */
const uuidv7At = (at) =>
  `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
     PLACING substring(int8send(floor(extract(epoch FROM ${at}) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid`;

/**
 * `size` finished rows straight into the table, valid for every column and CHECK of the migration:
 * 90% succeeded (2% of them on a second attempt), 6% failed after 5 attempts, 4% cancelled (half
 * before they started); every BENCH_EVERY-th row the bench owner's, the rest over OWNERS owners;
 * created_at spread evenly over the 30 days before `end`, started 0-2 s later, ran `ms` (0-5 s).
 * Ids are UUIDv7 of their created_at, as the api would have made them: the table and its primary key
 * are what production holds (with random ids every submit after the fill would land on a random leaf).
 */
const FILL_SQL = `
  INSERT INTO tasks (id, owner, type, payload, status, attempt, max_attempts, timeout_ms, progress_percent,
                     result, error, created_at, updated_at, started_at, finished_at)
  SELECT ${uuidv7At('created_at')}, owner, 'demo.sleep', jsonb_build_object('ms', ms), status, attempt, 5, 3900000,
         CASE WHEN status = 'succeeded' THEN 100 ELSE 0 END,
         CASE WHEN status = 'succeeded' THEN jsonb_build_object('sleptMs', ms, 'attempt', attempt) END,
         CASE WHEN status = 'failed' THEN '{"code":"DEMO.FAIL_TIMES","message":"demo.sleep asked to fail attempt 5 of 5","retryable":true}'::jsonb END,
         created_at, finished_at, started_at, finished_at
    FROM (SELECT *, CASE WHEN attempt > 0 THEN created_at + wait END AS started_at,
                 created_at + wait + CASE WHEN attempt > 0 THEN ms * interval '1 millisecond' ELSE interval '0' END AS finished_at
            FROM (SELECT owner, status, ms, wait, created_at,
                         CASE status WHEN 'succeeded' THEN 1 + (h % 50 = 0)::int WHEN 'failed' THEN 5 ELSE h % 2 END AS attempt
                    FROM (SELECT h,
                                 CASE WHEN i % $5 = 0 THEN 'bench' ELSE 'bench-owner-' || h % $6 END AS owner,
                                 CASE WHEN h % 100 < 90 THEN 'succeeded' WHEN h % 100 < 96 THEN 'failed' ELSE 'cancelled' END AS status,
                                 h / 100 % 5000 AS ms,
                                 (h / 1000000 % 2000) * interval '1 millisecond' AS wait,
                                 $4::timestamptz - ($3 - i)::float8 / $3 * interval '30 days' AS created_at
                            FROM generate_series($1::bigint, $2::bigint - 1) AS i
                                 CROSS JOIN LATERAL (SELECT hashint8(i) & 2147483647 AS h) x) a) b) c`;

/** The retention job's counters from a worker's /metrics: tasks deleted, and batches (count, seconds). */
async function retentionMetrics(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (prefix) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(prefix))
        ?.split(' ')
        .at(-1) ?? 0,
    );
  return {
    deleted: value('tasksys_retention_deleted_total{table="tasks"}'),
    batches: value('tasksys_retention_batch_duration_seconds_count'),
    batchSeconds: value('tasksys_retention_batch_duration_seconds_sum'),
    t: now(),
  };
}
const cleanupRate = (a, b) => ((b.deleted - a.deleted) * 1000) / (b.t - a.t);
const meanBatchMs = (a, b) =>
  b.batches > a.batches ? ((b.batchSeconds - a.batchSeconds) * 1000) / (b.batches - a.batches) : NaN;

/**
 * The retention job (TASK_RETENTION_MS = RETENTION_DAYS) on the filled table: its partial index
 * dropped and built again CONCURRENTLY (as its migration does on a table with rows), then one
 * worker whose only work is the job (it serves demo.crash, of which there are none) at the
 * product's batch size and pause: the cleanup rate alone for up to CLEANUP_ALONE_S, then while the
 * submit runs go (the submit rate during cleanup against `without`, measured just before).
 */
async function cleanup({ d, db, meter }, { p, without }) {
  const i0 = now();
  await db.query(`DROP INDEX tasks_finished_at`);
  await db.query(`CREATE INDEX CONCURRENTLY tasks_finished_at ON tasks (finished_at, id) WHERE status IN ${TERMINAL}`);
  const indexS = (now() - i0) / 1000;
  const {
    rows: [{ old, mb: indexMb }],
  } = await db.query(
    `SELECT (SELECT count(*)::int FROM tasks WHERE status IN ${TERMINAL} AND finished_at < now() - $1::int * interval '1 day') AS old,
            pg_relation_size('tasks_finished_at') / 1048576.0::float8 AS mb`,
    [RETENTION_DAYS],
  );
  await d.startWorkers(1, {
    WORKER_TASK_TYPES: 'demo.crash',
    DEMO_ALLOW_CRASH: '1',
    TASK_RETENTION_MS: String(RETENTION_DAYS * DAY_MS),
    TASK_RETENTION_INTERVAL_MS: '1000',
  });
  // The health port (and /metrics) the Deployment chose for it, from its environment.
  const port = readFileSync(`/proc/${d.processes['worker-1'].pid}/environ`, 'utf8')
    .split('\0')
    .find((kv) => kv.startsWith('WORKER_HEALTH_PORT='))
    .split('=')[1];
  try {
    console.log(`scale finished: index built CONCURRENTLY in ${fmt(indexS, 1)} s; ${fmt(old)} rows past the retention`);
    await waitUntil(
      'the retention job to start deleting',
      async () => (await retentionMetrics(port)).deleted > 0,
      60_000,
      200,
    );
    const a0 = await retentionMetrics(port);
    const c0 = cpuMark(meter);
    const end = now() + CLEANUP_ALONE_S * 1000;
    let a1 = a0;
    while (now() < end && a1.deleted < old) {
      await sleep(1000);
      a1 = await retentionMetrics(port);
    }
    const busy = cores(meter, c0, ['postgres', 'worker-1']);
    const b0 = await retentionMetrics(port);
    const during = await submitRate(p, meter);
    const b1 = await retentionMetrics(port);
    const alone = cleanupRate(a0, a1);
    const whileSubmitting = cleanupRate(b0, b1);
    const doneEarly = b1.deleted >= old;
    const ratio = (100 * during.rate) / without.rate;
    return {
      measured: `then the retention job: its index tasks_finished_at dropped and built again CONCURRENTLY (as its migration does on a table with rows); one worker whose only work is the job (WORKER_TASK_TYPES demo.crash, none queued), TASK_RETENTION_MS ${RETENTION_DAYS} days (so ${fmt(old)} of the rows are past it), batch size and pause at their defaults; its rate from the worker's /metrics over ${CLEANUP_ALONE_S} s alone, then while the submit runs go again (submit rate during cleanup against the one just before)`,
      targets: [
        target(
          `submits not slowed by the cleanup (≥ ${RATIO_TARGET * 100}% of the rate without it)`,
          doneEarly ? null : during.rate >= RATIO_TARGET * without.rate,
          `${rates(during)} during cleanup against ${rates(without)} without = ${fmt(ratio)}%`,
        ),
      ],
      figures: [
        `index tasks_finished_at (finished_at, id) of terminal tasks built CONCURRENTLY in ${fmt(indexS, 1)} s on ${fmt(without.rows)} rows (${mb(indexMb)})`,
        `cleanup alone: ${fmt(alone)} tasks/s over ${fmt((a1.t - a0.t) / 1000, 1)} s (${fmt(a1.batches - a0.batches)} batches of ≤ 1,000, ${fmt(meanBatchMs(a0, a1), 1)} ms each on average); cores busy: ${busy}` +
          (a1.deleted >= old
            ? ' (finished within the window)'
            : `; all ${fmt(old)} would take ${fmt(old / alone / 60, 1)} min at this rate`),
        `cleanup while submitting: ${fmt(whileSubmitting)} tasks/s over ${fmt((b1.t - b0.t) / 1000, 1)} s, ${fmt(meanBatchMs(b0, b1), 1)} ms a batch` +
          (doneEarly ? ' (the job ran out of rows to delete during the window: not a fair comparison)' : ''),
        `${fmt(b1.deleted)} rows deleted when the worker was stopped (${fmt(old)} were past the retention when counted just before it started; its cutoff is a little later). No task_events in this fill: a real task has ~3-4, deleted in the same statement`,
      ],
    };
  } finally {
    await d.stop(5_000, ['worker-1']);
  }
}

/**
 * Batch submits that retry a 429: the api's shared rate limiter refuses some bursts on a loaded
 * machine although the limit is 1,000,000/min. Each retry waits 200 ms, inside the timed rate, and is counted.
 */
function retrying429(p, refused) {
  return {
    ...p,
    sendBatch: async (items) => {
      for (;;) {
        try {
          return await p.sendBatch(items);
        } catch (e) {
          if (!/: 429 /.test(e.message)) throw e;
          refused.n++;
          await sleep(200);
        }
      }
    },
  };
}

async function finished({ d, db, meter }, { size }) {
  // Keys fresh to the api spend the per-address budget until cached: 4 batch submits in flight from a
  // new key got 429 here (RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE 60); this scenario measures the table, not limits.
  await d.startApi({ RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '1000000' });
  const benchKey = await d.createKey('bench');
  const submitKey = await d.createKey('bench-submit'); // submits stay out of the bench owner's listing
  // A key's first requests wait for the shared rate-limit budget's first sync; a burst of batches before it got 429.
  const c = ours.client(d.cfg, submitKey);
  try {
    for (let i = 0; i < 20; i++) await c.request('GET', '/v1/tasks');
  } finally {
    c.close();
  }
  await sleep(3000);
  const refused = { n: 0 };
  const p = retrying429(await ours.producer({ ...d.cfg, key: submitKey }), refused);
  try {
    await bulk(p, { n: REFERENCE_RUN, batch: BATCH, inflight: INFLIGHT }); // warm-up
    const empty = await submitRate(p, meter);
    const before = await reads(db, d.cfg, submitKey, 'bench-submit');
    const {
      rows: [{ n: emptyRows }],
    } = await db.query(`SELECT count(*)::int AS n FROM tasks`);
    console.log(`scale finished: empty-table submit ${rates(empty)}; filling ${size} rows`);

    const f0 = now();
    const {
      rows: [{ end }],
    } = await db.query(`SELECT now() AS end`);
    for (let from = 0; from < size; from += FILL_CHUNK) {
      await db.query(FILL_SQL, [from, Math.min(size, from + FILL_CHUNK), size, end, BENCH_EVERY, OWNERS]);
      console.log(`scale finished: ${Math.min(size, from + FILL_CHUNK)} rows after ${fmt((now() - f0) / 1000)} s`);
    }
    const fillS = (now() - f0) / 1000;
    const v0 = now();
    await db.query(`VACUUM (ANALYZE) tasks`);
    const vacuumS = (now() - v0) / 1000;
    const {
      rows: [t],
    } = await db.query(
      `SELECT count(*) FILTER (WHERE owner = 'bench')::int AS bench, count(DISTINCT owner)::int AS owners,
              pg_table_size('tasks') / 1048576.0::float8 AS heap, pg_indexes_size('tasks') / 1048576.0::float8 AS idx FROM tasks`,
    );
    const after = await reads(db, d.cfg, benchKey, 'bench');
    const full = await submitRate(p, meter);
    const retention = await cleanup({ d, db, meter }, { p, without: { ...full, rows: size + emptyRows } });
    const p99Met = after.byId.p99 < P99_TARGET_MS && after.list.p99 < P99_TARGET_MS;
    return {
      title: `(c) a tasks table holding ${fmt(size)} finished tasks`,
      measured: `api only (no workers). Batch submit rate on the empty table (tasks accepted/s submitting ${fmt(REFERENCE_RUN)} demo.sleep tasks, ${BATCH} per request, ${INFLIGHT} in flight; median of ${SUBMIT_RUNS} runs after one run of warm-up; owner bench-submit); ${fmt(size)} finished rows inserted in SQL (chunks of ${fmt(FILL_CHUNK)}; 90% succeeded, 6% failed, 4% cancelled; ${fmt(t.bench)} the bench owner's, the rest over ${fmt(OWNERS)} owners; created over 30 days, ids UUIDv7 of their created_at as the api makes them; no task_events rows for them), then VACUUM ANALYZE; then sequential GETs over keep-alive: ${fmt(after.n)} GET /v1/tasks/:id of random bench-owner ids and ${READS_LIST} GET /v1/tasks (first page, default limit), and the submit rate again; ${retention.measured}`,
      targets: [
        target(
          `GET /v1/tasks/:id and first page of GET /v1/tasks p99 < ${P99_TARGET_MS} ms`,
          p99Met,
          `by id ${p3(after.byId)}; list ${p3(after.list)}`,
        ),
        target(
          `submit rate ≥ ${RATIO_TARGET * 100}% of the empty table's`,
          full.rate >= RATIO_TARGET * empty.rate,
          `${rates(full)} against ${rates(empty)} = ${fmt((100 * full.rate) / empty.rate)}%`,
        ),
        ...retention.targets,
      ],
      figures: [
        `fill ${fmt(fillS, 1)} s (${fmt(size / fillS)} rows/s), VACUUM ANALYZE ${fmt(vacuumS, 1)} s; table ${mb(t.heap)} + indexes ${mb(t.idx)}; ${fmt(t.owners)} owners`,
        `for reference, the same reads before the fill (${fmt(emptyRows)} queued rows, all the submitter's): by id ${p3(before.byId)}; list ${p3(before.list)}`,
        ...retention.figures,
        `batch submits refused with 429 by the api's rate limiter and retried after 200 ms (within the timed rates): ${fmt(refused.n)}`,
      ],
    };
  } finally {
    p.close();
  }
}

// ---------------------------------------------------------------------------------------------
const RUNNERS = { running, backlog, finished };

/** One scenario on its own deployment; everything it started is stopped and removed in the end. */
async function scenario(name, opts) {
  const d = new ours.Deployment(
    `${name}${randomBytes(3).toString('hex')}`,
    mkdtempSync(join(tmpdir(), `bench-scale-${name}-`)),
  );
  const meter = new ProcessMeter();
  meter.addServices(ours.services());
  for (const n of ['api', ...WORKER_NAMES]) meter.add(n, () => (d.processes[n] ? [d.processes[n].pid] : []));
  const db = new pg.Client(ours.PG);
  await db.connect();
  try {
    await db.query(`SET search_path TO "${d.cfg.schema}"`);
    return { ...(await RUNNERS[name]({ d, db, meter }, opts)), logDir: d.logDir };
  } finally {
    await d.stop(0); // the schema goes next: nothing worth handing back, so no graceful drain of thousands of runs
    await db.end().catch(() => {});
    await ours.cleanup(d.cfg).catch((e) => console.error(`scale ${name}: cleanup failed: ${e.message}`));
  }
}

/** Runs the named scenarios one after the other; a failure is recorded and the next one runs. */
export async function runScale({ scenarios, sizes, runningWindowS, drainWindowS, emptyRate }) {
  const opts = {
    running: { size: sizes.running, windowS: runningWindowS },
    backlog: { size: sizes.backlog, windowS: drainWindowS, emptyRate },
    finished: { size: sizes.finished },
  };
  const out = {};
  for (const name of scenarios) {
    console.log(`scale ${name}: ${fmt(sizes[name])}`);
    try {
      out[name] = await scenario(name, opts[name]);
      console.log(`scale ${name}: ${out[name].targets.join('; ')} (logs ${out[name].logDir})`);
    } catch (e) {
      out[name] = { error: e.message };
      console.error(`scale ${name}: FAILED ${e.stack}`);
    }
  }
  return out;
}

/** The "## Scale" section of RESULTS.md. */
export function scaleReport(results, { command, sizes, autovacuum }) {
  const smaller = Object.keys(results).filter((n) => sizes[n] < ISSUE_SIZES[n]);
  const lines = [``, `## Scale`, ``];
  lines.push(`- command: \`${command}\``);
  lines.push(
    `- sizes: ${Object.keys(results)
      .map(
        (n) =>
          `${n} ${fmt(sizes[n])}${sizes[n] < ISSUE_SIZES[n] ? ` (the issue asks for ${fmt(ISSUE_SIZES[n])})` : ''}`,
      )
      .join(', ')}`,
  );
  if (smaller.length)
    lines.push(
      `- **${smaller.join(', ')}: smaller than the issue's sizes; ${smaller.length > 1 ? 'these rows are' : 'this row is'} not the issue's measurement.**`,
    );
  lines.push(
    `- our system only: the built api and workers, each scenario on its own schema and namespace, removed afterwards; PostgreSQL autovacuum on this server: ${autovacuum}`,
  );
  lines.push(``, `| scenario | what was measured | targets | figures |`, `| --- | --- | --- | --- |`);
  const cell = (s) => s.replaceAll('|', '\\|');
  for (const [name, r] of Object.entries(results)) {
    if (r.error) lines.push(`| ${name} ${fmt(sizes[name])} | failed: ${cell(r.error.split('\n')[0])} | | |`);
    else
      lines.push(
        `| ${cell(r.title)} | ${cell(r.measured)} | ${r.targets.map(cell).join('<br>')} | ${r.figures.map(cell).join('<br>')} |`,
      );
  }
  for (const r of Object.values(results)) if (r.detail) lines.push(``, ...r.detail);
  lines.push(
    ``,
    `How to read it: rates per second over the measurement window; "cores busy" is CPU time from /proc over the window (postgres: all its processes, including backends of other users of this server). Table and database counters are PostgreSQL's cumulative statistics, which backends flush up to about 10 s late, so a rate over a 60-s window can be off by some percent. Commits/s and WAL cover the whole database/server. RSS is VmRSS sampled every second; RSS figures of (a) are medians over the sampling period unless marked max; "KB per task" is the growth of the median RSS from the 1,000-per-worker point to the full count per added task (from idle when there is no second point: an idle worker has not collected its start-up garbage yet, so that figure can even come out negative). Garbage moves RSS by 10-20 MB, so below a few thousand added tasks per worker the figure is mostly noise. CPU per 1,000 submits (api and postgres CPU seconds over the submit runs) is steadier than the rate on a shared machine.`,
  );
  return lines.join('\n') + '\n';
}
