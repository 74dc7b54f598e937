// npm run bench -- [--jobs 20000] [--runs 3] [--quick] [--only ours,amqp,bullmq,pgboss]
//                   [--scale all|none|running,backlog,finished] [--running 10000] [--backlog 1000000] [--finished 10000000]
// Runs the same no-op workload on each system, each isolated (own schema / namespace / key prefix,
// removed afterwards), then the scale scenarios on ours (scale.mjs), and writes bench/RESULTS.md.
// See bench/README.md.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fmt, median, pcts, ProcessMeter, startProcess } from './measure.mjs';
import { ISSUE_SIZES, runScale, SCENARIOS, scaleReport } from './scale.mjs';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: 'ours,amqp,bullmq,pgboss' },
    out: { type: 'string', default: 'bench/RESULTS.md' },
    scale: { type: 'string' }, // default: all, or none with --quick
    running: { type: 'string', default: String(ISSUE_SIZES.running) },
    backlog: { type: 'string', default: String(ISSUE_SIZES.backlog) },
    finished: { type: 'string', default: String(ISSUE_SIZES.finished) },
    'running-window': { type: 'string', default: '60' }, // seconds of heartbeat load measured
    'drain-window': { type: 'string', default: '180' }, // seconds of backlog drain measured (less once drained)
  },
});
const quick = args.quick;
const JOBS = quick ? 2000 : Number(args.jobs);
const RUNS = quick ? 1 : Number(args.runs);
const WARMUP = Math.min(1000, JOBS);
const RATE = 500; // tasks/s for the latency phase (the issue's target rate)
const LOW_RATE = 100; // and a rate every system here sustains with room to spare
const LATENCY_SECONDS = quick ? 3 : 10;
const BATCH = 1000;
const INFLIGHT = 4;

const SYSTEMS = {
  ours: { file: './systems/ours.mjs', label: 'ours (api + worker)' },
  amqp: { file: './systems/amqp.mjs', opts: { pg: false }, label: 'raw amqplib' },
  'amqp-pg': { file: './systems/amqp.mjs', opts: { pg: true }, label: 'amqplib + PG per message (naive durable)' },
  bullmq: { file: './systems/bullmq.mjs', label: 'BullMQ' },
  pgboss: { file: './systems/pgboss.mjs', label: 'pg-boss' },
};
const wanted = args.only.split(',').map((s) => s.trim());
const selected = Object.keys(SYSTEMS).filter((k) => wanted.some((w) => k === w || k.startsWith(`${w}-`)));
const unknown = wanted.filter((w) => !selected.some((k) => k === w || k.startsWith(`${w}-`)));
if (unknown.length) throw new Error(`unknown system(s) ${unknown}; choose from ${Object.keys(SYSTEMS)}`);
const scaleArg = args.scale ?? (quick ? 'none' : 'all');
const scenarios = scaleArg === 'all' ? SCENARIOS : scaleArg === 'none' ? [] : scaleArg.split(',').map((s) => s.trim());
const badScenarios = scenarios.filter((s) => !SCENARIOS.includes(s));
if (badScenarios.length)
  throw new Error(`unknown scale scenario(s) ${badScenarios}; choose all, none or from ${SCENARIOS}`);
const sizes = Object.fromEntries(SCENARIOS.map((s) => [s, Number(args[s])]));
for (const s of scenarios)
  if (!(Number.isInteger(sizes[s]) && sizes[s] > 0)) throw new Error(`--${s} must be a positive integer`);

/** The next IPC message `cmd` from a child; rejects on its `error` message, its exit or the timeout. */
function reply(child, cmd, timeoutMs = 600_000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(reject, new Error(`${child.name}: no '${cmd}' within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m) =>
      m.cmd === cmd ? done(resolve, m) : m.cmd === 'error' && done(reject, new Error(`${child.name}: ${m.message}`));
    const onExit = (code) => done(reject, new Error(`${child.name} exited (${code}); see its log`));
    const done = (f, v) => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      f(v);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

function spawnRole(file, role, cfg, logDir) {
  const child = startProcess(role, ['bench/child.mjs', new URL(file, import.meta.url).href, role], {
    logDir,
    ipc: true,
    env: { BENCH_CFG: JSON.stringify(cfg) },
  });
  child.name = role;
  child.on('error', (e) => console.error(`${role}: ${e.message}`)); // e.g. EPIPE to a child that died
  child.ready = reply(child, 'ready', 60_000);
  return child;
}

async function runOnce(name) {
  const sys = SYSTEMS[name];
  const mod = await import(sys.file);
  const id = randomBytes(4).toString('hex');
  const logDir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const meter = new ProcessMeter();
  meter.addServices(mod.services(sys.opts ?? {}));
  const procs = {};
  let cfg;
  try {
    const prep = await mod.prepare({ id, jobs: JOBS, logDir, opts: sys.opts ?? {} });
    cfg = prep.cfg;
    Object.assign(procs, prep.processes);
    const consumer = mod.consumer ? (procs.consumer = spawnRole(sys.file, 'consumer', cfg, logDir)) : undefined;
    const producer = (procs[mod.consumer ? 'producer' : 'client'] = spawnRole(sys.file, 'producer', cfg, logDir));
    await Promise.all([consumer?.ready, producer.ready]);
    for (const [n, p] of Object.entries(procs)) meter.add(n, () => [p.pid]);
    meter.start();

    let total = prep.preloaded ?? 0;
    const phase = async (n, extra = {}) => {
      total += n;
      const done = consumer && reply(consumer, 'done');
      consumer?.send({ cmd: 'expect', total, collect: !!extra.rate });
      const producedP = reply(producer, 'produced');
      producer.send({ cmd: 'produce', n, batch: BATCH, inflight: INFLIGHT, ...extra });
      const produced = await producedP;
      const failed = Object.values(produced.errors ?? {}).reduce((a, b) => a + b, 0);
      if (failed) {
        total -= failed; // those were never created
        consumer?.send({ cmd: 'expect', total, collect: !!extra.rate, keep: true });
      }
      const c = await done;
      const finishedAt = mod.finishedAt ? await mod.finishedAt(cfg, total) : c.doneAt;
      return { produced, finishedAt, consumed: c };
    };

    await phase(WARMUP);
    const cpu0 = meter.cpu();
    const tp = await phase(JOBS);
    const cpu = ProcessMeter.diff(cpu0, meter.cpu());
    const seconds = (tp.finishedAt - tp.produced.startAt) / 1000;

    const lowp = await phase(LOW_RATE * LATENCY_SECONDS, { rate: LOW_RATE, failures: true });
    const lowDb = mod.latencies ? await mod.latencies(cfg, lowp.produced.sent) : {};
    const lp = await phase(RATE * LATENCY_SECONDS, { rate: RATE, failures: true });
    const fromDb = mod.latencies ? await mod.latencies(cfg, lp.produced.sent) : {};
    const submitErrors = Object.values(lp.produced.errors ?? {}).reduce((a, b) => a + b, 0);
    if (submitErrors)
      console.error(`${name}: ${submitErrors} submits failed in the latency phase:`, lp.produced.errors);
    const rss = meter.stop();
    return {
      tput: JOBS / seconds,
      seconds,
      lat: pcts(fromDb.client ?? lp.consumed?.latencies),
      lowLat: pcts(lowDb.client ?? lowp.consumed?.latencies),
      dbLat: pcts(fromDb.db),
      submitErrors,
      submitErrorKinds: lp.produced.errors,
      cpuPer1k: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, (v * 1000) / JOBS])),
      cores: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / seconds])),
      rss,
      logDir,
    };
  } finally {
    meter.stop();
    await Promise.all(
      Object.values(procs).map(async (p) => {
        if (p.connected) {
          p.send({ cmd: 'close' });
          await Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]);
        }
        await p.stop(15_000);
      }),
    );
    if (cfg) await mod.cleanup(cfg).catch((e) => console.error(`${name}: cleanup failed: ${e.message}`));
  }
}

function summarize(runs) {
  const keys = (o) => [...new Set(runs.flatMap((r) => Object.keys(r[o])))];
  const med = (f) => median(runs.map(f));
  return {
    tput: med((r) => r.tput),
    submitErrors: runs.reduce((s, r) => s + r.submitErrors, 0),
    submitErrorKinds: Object.assign({}, ...runs.map((r) => r.submitErrorKinds)),
    tputs: runs.map((r) => r.tput),
    lat: Object.fromEntries(['p50', 'p95', 'p99', 'max'].map((p) => [p, med((r) => r.lat[p])])),
    lowLat: Object.fromEntries(['p50', 'p95', 'p99', 'max'].map((p) => [p, med((r) => r.lowLat[p])])),
    dbLat: runs[0].dbLat && Object.fromEntries(['p50', 'p95', 'p99', 'max'].map((p) => [p, med((r) => r.dbLat[p])])),
    cpuPer1k: Object.fromEntries(keys('cpuPer1k').map((k) => [k, med((r) => r.cpuPer1k[k])])),
    cores: Object.fromEntries(keys('cores').map((k) => [k, med((r) => r.cores[k])])),
    rss: Object.fromEntries(keys('rss').map((k) => [k, med((r) => r.rss[k])])),
  };
}

function versions() {
  const v = (p) => {
    try {
      return JSON.parse(readFileSync(`node_modules/${p}/package.json`, 'utf8')).version;
    } catch {
      return '?';
    }
  };
  const sh = (cmd, a) => {
    try {
      return execFileSync(cmd, a, { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    } catch {
      return '?';
    }
  };
  return {
    node: process.version,
    nproc: sh('nproc', []),
    cpu: cpus()[0]?.model ?? '?',
    packages: ['amqplib', 'bullmq', 'ioredis', 'pg-boss', 'pg'].map((p) => `${p} ${v(p)}`).join(', '),
    postgres: sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'tasks', '-Atc', 'SHOW server_version']),
    redis: sh('redis-server', ['--version']).match(/v=(\S+)/)?.[1] ?? '?',
    rabbitmq: sh('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']),
    autovacuum: sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'tasks', '-Atc', 'SHOW autovacuum']),
    git:
      sh('git', ['rev-parse', '--short', 'HEAD']) +
      (sh('git', ['status', '--porcelain', 'apps', 'libs']) ? ' (+ uncommitted changes in apps/libs)' : ''),
  };
}

function report(results, meta) {
  const order = [
    'api',
    'client',
    'worker-1',
    'worker-2',
    'producer',
    'consumer',
    'postgres',
    'rabbitmq',
    'redis',
    'other',
  ];
  const failures = [];
  const byOrder = (o) => Object.keys(o).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const lines = [];
  lines.push(`# Benchmark results`, ``);
  lines.push(`- date: ${meta.date}`);
  lines.push(`- machine: ${meta.v.nproc} cores (\`nproc\`), ${meta.v.cpu}; load average at start ${meta.load}`);
  lines.push(`- node ${meta.v.node}; ${meta.v.packages}`);
  lines.push(
    `- services (all on this machine): PostgreSQL ${meta.v.postgres}, RabbitMQ ${meta.v.rabbitmq}, Redis ${meta.v.redis} (no persistence)`,
  );
  lines.push(`- product: built from commit ${meta.v.git}`);
  lines.push(`- command: \`${meta.command}\``);
  lines.push(
    `- workload: ${JOBS.toLocaleString('en-US')} no-op jobs end to end (after a ${WARMUP.toLocaleString('en-US')}-job warm-up), then single submits for ${LATENCY_SECONDS} s at ${LOW_RATE}/s and ${LATENCY_SECONDS} s at ${RATE}/s for latency; median of ${RUNS} run(s)${meta.runsNote}`,
  );
  lines.push(``);
  lines.push(
    `| system | tasks/s end to end | submit-to-start p50 / p95 / p99 ms at ${LOW_RATE}/s: from the client call | same at ${RATE}/s | same at ${RATE}/s, in the database: created → started | CPU s per 1k tasks by process (cores busy) | peak RSS MB by process |`,
  );
  lines.push(`| --- | ---: | --- | --- | --- | --- | --- |`);
  for (const [name, r] of Object.entries(results)) {
    if (r.error) {
      lines.push(`| ${SYSTEMS[name].label} | failed: ${r.error.split('\n')[0]} | | | | | |`);
      continue;
    }
    const tput = `**${fmt(r.tput)}**` + (r.tputs.length > 1 ? ` (${r.tputs.map((x) => fmt(x)).join(', ')})` : '');
    const p3 = (l) => (l ? `${fmt(l.p50, 1)} / ${fmt(l.p95, 1)} / ${fmt(l.p99, 1)}` : '-');
    const cpu = byOrder(r.cpuPer1k)
      .map((k) => `${k} ${fmt(r.cpuPer1k[k], 3)} (${fmt(r.cores[k], 2)})`)
      .join(', ');
    const rss = byOrder(r.rss)
      .map((k) => `${k} ${fmt(r.rss[k])}`)
      .join(', ');
    const errs = r.submitErrors
      ? ` (**${r.submitErrors} of ${RATE * LATENCY_SECONDS * r.tputs.length} submits failed**, see notes)`
      : '';
    lines.push(
      `| ${SYSTEMS[name].label} | ${tput} | ${p3(r.lowLat)} | ${p3(r.lat)}${errs} | ${p3(r.dbLat)} | ${cpu} | ${rss} |`,
    );
    if (r.submitErrors)
      failures.push(
        `- ${SYSTEMS[name].label}: failed submits at ${RATE}/s: ${Object.entries(r.submitErrorKinds)
          .map(([k, n]) => `${n} x \`${k}\``)
          .join('; ')}`,
      );
  }
  if (failures.length) lines.push(``, ...failures);
  const ours = results.ours;
  if (ours && !ours.error) {
    lines.push(``, `## Ours against each peer (same run)`, ``);
    lines.push(
      `| peer | throughput ours/peer | p99 latency (client) at ${LOW_RATE}/s ours/peer | same at ${RATE}/s | total CPU per task ours/peer |`,
    );
    lines.push(`| --- | ---: | ---: | ---: | ---: |`);
    const cpuTotal = (r) =>
      Object.entries(r.cpuPer1k)
        .filter(([k]) => k !== 'other')
        .reduce((s, [, v]) => s + v, 0);
    for (const [name, r] of Object.entries(results)) {
      if (name === 'ours' || r.error) continue;
      lines.push(
        `| ${SYSTEMS[name].label} | ${fmt(ours.tput / r.tput, 2)}x | ${fmt(ours.lowLat.p99 / r.lowLat.p99, 2)}x | ${fmt(ours.lat.p99 / r.lat.p99, 2)}x | ${fmt(cpuTotal(ours) / cpuTotal(r), 2)}x |`,
      );
    }
  }
  lines.push(``, `## Where the CPU went during the throughput phase (computed)`, ``);
  for (const [name, r] of Object.entries(results)) {
    if (r.error) continue;
    const mine = Object.entries(r.cores)
      .filter(([k]) => k !== 'other')
      .sort((a, b) => b[1] - a[1]);
    const sum = mine.reduce((s, [, c]) => s + c, 0);
    const [top, topCores] = mine[0];
    const verdict =
      topCores > 0.85
        ? `${top[0].toUpperCase()}${top.slice(1)} is close to a full core: CPU-bound there`
        : sum + (r.cores.other ?? 0) > Number(meta.v.nproc) * 0.9
          ? 'The machine was saturated (see `other`): CPU-starved'
          : 'No process near a full core: bound by waits (commits/fsync, locks, round trips), not CPU';
    lines.push(
      `- ${SYSTEMS[name].label}: busiest ${top} ${fmt(topCores, 2)} cores; its processes together ${fmt(sum, 2)} of ${meta.v.nproc} cores; rest of the machine ${fmt(r.cores.other, 2)} cores. ${verdict}.`,
    );
  }
  lines.push(``, `## How each was run`, ``);
  for (const name of Object.keys(results)) lines.push(`- ${SYSTEMS[name].label}: ${meta.describe[name]}`);
  lines.push(``, `## How to read it`, ``);
  lines.push(
    `- tasks/s: ${JOBS.toLocaleString('en-US')} jobs divided by the time from the first submit to the last job finished (ours and pg-boss: the latest finished_at/completed_on in the database; the others: the consumer's count after the ack/completion).`,
    `- latency from the client call: from just before the client sends (one task per call, ${RATE}/s, not waiting for earlier calls) to the handler starting: the consumer's clock for the peers, \`started_at\` (the claim) for ours; all processes share this machine's clock. In the database: ours \`started_at - created_at\`, pg-boss \`started_on - created_on\` (the HTTP request or client-side queueing before the insert is not included).`,
    `- CPU: utime+stime from /proc/<pid>/stat over the throughput phase, per 1,000 tasks; in brackets the cores that process kept busy on average. Services are summed over all their processes (postgres: the postmaster's reaped-children time counts backends that exited). \`other\` is the rest of the machine (other engineers' tests, this runner): CPU the measured system did not get. postgres and rabbitmq include any load other users put on the same shared servers during the run.`,
    `- RSS: VmRSS sampled every 200 ms for processes the bench started; for services, the sum of Pss (proportional set size, so shared buffers are not counted once per backend).`,
  );
  if (meta.notes) lines.push(``, meta.notes);
  return lines.join('\n') + '\n';
}

const date = new Date().toISOString();
const load = loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');
const v = versions();
console.log(
  `bench: ${selected.join(', ')}; ${JOBS} jobs, ${RUNS} run(s); scale: ${scenarios.map((s) => `${s} ${sizes[s]}`).join(', ') || 'none'}; ${v.nproc} cores, load ${load}`,
);
const raw = Object.fromEntries(selected.map((n) => [n, []]));
const errors = {};
for (let run = 1; run <= RUNS; run++) {
  for (const name of selected) {
    try {
      const r = await runOnce(name);
      raw[name].push(r);
      console.log(
        `run ${run} ${name}: ${fmt(r.tput)}/s, p50/p95/p99 ${fmt(r.lat.p50, 1)}/${fmt(r.lat.p95, 1)}/${fmt(r.lat.p99, 1)} ms, cpu/1k ${JSON.stringify(Object.fromEntries(Object.entries(r.cpuPer1k).map(([k, x]) => [k, +x.toFixed(3)])))} (logs ${r.logDir})`,
      );
    } catch (e) {
      errors[name] = e.message;
      console.error(`run ${run} ${name}: FAILED ${e.stack}`);
    }
  }
}
const results = Object.fromEntries(selected.map((n) => [n, raw[n].length ? summarize(raw[n]) : { error: errors[n] }]));
// the backlog drain is held against ours' throughput phase of this run, when there is one
const emptyRate = results.ours &&
  !results.ours.error && {
    tput: results.ours.tput,
    source: `ours' throughput phase in the table above (${fmt(JOBS)} tasks, median of ${RUNS} run(s))`,
  };
const scale = await runScale({
  scenarios,
  sizes,
  runningWindowS: Number(args['running-window']),
  drainWindowS: Number(args['drain-window']),
  emptyRate,
});
const describe = Object.fromEntries(
  await Promise.all(selected.map(async (n) => [n, (await import(SYSTEMS[n].file)).describe(SYSTEMS[n].opts ?? {})])),
);
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
let md = report(results, {
  date,
  load,
  v,
  command,
  describe,
  runsNote: quick ? ' (--quick smoke run: small counts, not comparable)' : '',
});
if (scenarios.length) md += scaleReport(scale, { command, sizes, autovacuum: v.autovacuum });
writeFileSync(args.out, md);
console.log(`\n${md}`);
process.exit(Object.keys(errors).length || Object.values(scale).some((r) => r.error) ? 1 : 0);
