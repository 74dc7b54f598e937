// node bench/single-submit.mjs [--rate 100] [--seconds 15] [--no-traces]
// Where a single submit's time and CPU go, on our system alone: the built api (with its outbox
// relay) and one worker, on a schema and namespace of their own (removed afterwards). It sends one
// POST /v1/tasks at a time at --rate for --seconds (not waiting for earlier calls) and prints:
//   - latency: the HTTP call at the client, and created -> started in the database;
//   - CPU per task of every process (/proc), the client included: it shares the machine;
//   - with traces (the default), the stages of each task from its OpenTelemetry spans, received
//     here over OTLP/HTTP JSON: the api's server span, the wait for the relay, the confirmed
//     publish, the broker to the worker, the claim. Tracing costs CPU itself: use --no-traces for
//     the CPU and latency figures, traces for where the time goes.
// Needs `npm run build` first, and the services of bench/README.md.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort, pcts, ProcessMeter } from './measure.mjs';
import { cleanup, Deployment, PG } from './systems/ours.mjs';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '15' },
    'no-traces': { type: 'boolean', default: false },
  },
});
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
if (!(RATE > 0 && SECONDS > 0)) throw new Error('--rate and --seconds must be positive numbers');
const TASK = { type: 'demo.sleep', payload: { ms: 0 } };

/** Every span the processes export, flattened with its service name. */
const spans = [];
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try {
      for (const rs of JSON.parse(Buffer.concat(chunks).toString()).resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value?.stringValue;
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ service, ...s });
      }
    } catch {
      // not JSON: ignored, as a collector would reject it
    }
    res.end('{}');
  });
});
const otlpPort = await freePort();
await new Promise((resolve) => receiver.listen(otlpPort, '127.0.0.1', resolve));
const tracing = args['no-traces']
  ? {}
  : {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '500',
    };

const id = randomBytes(4).toString('hex');
const logDir = mkdtempSync(join(tmpdir(), 'bench-single-'));
const d = new Deployment(id, logDir);
const log = (m) => console.log(`[single-submit ${new Date().toISOString().slice(11, 19)}] ${m}`);
try {
  log(`starting the api and a worker (schema ${d.cfg.schema}, namespace ${d.cfg.ns}, logs in ${logDir})`);
  await d.startApi(tracing);
  await d.startWorkers(1, { ...tracing, WORKER_CONCURRENCY: '1000' });
  const key = await d.createKey('single');
  const post = () =>
    fetch(`${d.cfg.base}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(TASK),
    }).then(async (r) => {
      if (r.status !== 201) throw new Error(`POST /v1/tasks: ${r.status} ${(await r.text()).slice(0, 200)}`);
      return r.json();
    });
  for (let i = 0; i < 50; i++) await post(); // warm-up: connections, prepared statements, JIT

  const meter = new ProcessMeter();
  meter.add('api', () => [d.processes.api.pid]);
  meter.add('worker', () => [d.processes['worker-1'].pid]);
  meter.add('client', () => [process.pid]);
  meter.addServices(['postgres', 'rabbitmq']);
  const before = meter.cpu();
  const t0 = Date.now();
  const http = [];
  const calls = [];
  let sent = 0;
  let shown = 0;
  log(`sending ${RATE * SECONDS} single submits at ${RATE}/s`);
  while (Date.now() - t0 < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - t0) * RATE) / 1000);
    for (; sent < due; sent++) {
      const at = performance.now();
      calls.push(post().then(() => http.push(performance.now() - at)));
    }
    if (Date.now() - t0 >= (shown + 5) * 1000) log(`  ${(shown += 5)} s: ${sent} sent, ${http.length} answered`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all(calls);
  const used = ProcessMeter.diff(before, meter.cpu());

  const c = new pg.Client(PG);
  await c.connect();
  const started = await (async () => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const rows = (
        await c.query(
          `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM "${d.cfg.schema}".tasks
            WHERE created_at >= to_timestamp($1 / 1000.0) AND started_at IS NOT NULL`,
          [t0],
        )
      ).rows.map((r) => Number(r.ms));
      if (rows.length >= sent) return rows;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('not every task started within 30 s');
  })();
  await c.end();

  const line = (name, values) => {
    const p = pcts(values);
    return `| ${name} | ${values.length} | ${p.p50.toFixed(1)} | ${p.p95.toFixed(1)} | ${p.p99.toFixed(1)} |`;
  };
  console.log(`\n${sent} single submits at ${RATE}/s for ${SECONDS} s${args['no-traces'] ? '' : ' (traced)'}\n`);
  console.log('| latency, ms | n | p50 | p95 | p99 |\n| --- | ---: | ---: | ---: | ---: |');
  console.log(line('HTTP call (client)', http));
  console.log(line('created -> started (database)', started));
  console.log(
    `\n| CPU ms per task | ${Object.keys(used).join(' | ')} |\n| --- |${' ---: |'.repeat(Object.keys(used).length)}`,
  );
  console.log(
    `| | ${Object.values(used)
      .map((s) => ((s * 1000) / sent).toFixed(2))
      .join(' | ')} |`,
  );

  if (!args['no-traces']) {
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the exporters' last batch
    const ms = (nanos) => Number(BigInt(nanos) / 1000n) / 1000;
    const stages = new Map();
    const add = (k, v) => stages.set(k, [...(stages.get(k) ?? []), v]);
    const traces = new Map();
    for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    for (const ss of traces.values()) {
      const server = ss.find((s) => s.kind === 2 && s.name.startsWith('POST'));
      const publish = ss.find((s) => s.kind === 4);
      const consume = ss.find((s) => s.kind === 5);
      if (!server || !publish || !consume) continue;
      add('api: the request (server span)', ms(server.endTimeUnixNano) - ms(server.startTimeUnixNano));
      add('relay: answered -> publish starts', ms(publish.startTimeUnixNano) - ms(server.endTimeUnixNano));
      add('relay: publish until confirmed', ms(publish.endTimeUnixNano) - ms(publish.startTimeUnixNano));
      add('broker: publish starts -> worker has it', ms(consume.startTimeUnixNano) - ms(publish.startTimeUnixNano));
      const claim = ss
        .filter((s) => s.service === 'tasksys-worker' && s.kind === 3 && s.name.startsWith('pg.query'))
        .sort((a, b) => ms(a.startTimeUnixNano) - ms(b.startTimeUnixNano))[0];
      if (claim) add('worker: the claim statement', ms(claim.endTimeUnixNano) - ms(claim.startTimeUnixNano));
    }
    console.log('\n| stage (from traces), ms | n | p50 | p95 | p99 |\n| --- | ---: | ---: | ---: | ---: |');
    for (const [name, values] of stages) console.log(line(name, values));
  }
} finally {
  await d.stop(5000).catch(() => undefined);
  await cleanup(d.cfg).catch((e) => console.error(`cleanup: ${e.message}`));
  receiver.close();
}
