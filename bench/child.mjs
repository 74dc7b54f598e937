// A producer or consumer process for one system, driven by the runner over IPC.
//   node bench/child.mjs <system module> producer|consumer     (config in BENCH_CFG)
// producer: {cmd:'produce', n, batch, inflight} sends n items in batches with `inflight` requests
//           in flight; with `rate`, one at a time at that many per second. Replies {startAt, endAt, sent}.
// consumer: counts finished jobs; {cmd:'expect', total, collect} replies {doneAt, latencies} once
//           `total` jobs finished since it started (latencies: start time minus item.t, in ms).
import { bulk, now, sleep } from './measure.mjs';

const [, , file, role] = process.argv;
const sys = await import(file);
const cfg = JSON.parse(process.env.BENCH_CFG);
const fail = (e) => {
  console.error(e);
  process.send?.({ cmd: 'error', message: String(e?.stack ?? e) });
  setTimeout(() => process.exit(1), 100);
};
process.on('unhandledRejection', fail);

async function paced(p, { n, rate }) {
  const startAt = now();
  const sends = [];
  const errors = {};
  let sent = 0;
  while (sent < n) {
    const due = Math.min(n, Math.floor(((now() - startAt) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      const t = now();
      const failed = (e) => {
        const k = String(e?.message ?? e).slice(0, 200);
        errors[k] = (errors[k] ?? 0) + 1;
        return [undefined, t];
      };
      sends.push(p.sendOne({ i: sent, t }).then((id) => [id, t], failed));
    }
    await sleep(1);
  }
  const withIds = (await Promise.all(sends)).filter(([id]) => id !== undefined);
  return { startAt, endAt: now(), sent: withIds, errors }; // a failed submit is counted, not retried // [id, send time] where the system returns an id
}

if (role === 'producer') {
  const p = await sys.producer(cfg);
  process.on('message', (m) => {
    if (m.cmd === 'produce')
      (m.rate ? paced(p, m) : bulk(p, m)).then((r) => process.send({ cmd: 'produced', ...r }), fail);
    if (m.cmd === 'close') p.close().finally(() => process.exit(0));
  });
} else {
  let count = 0;
  let target = Infinity;
  let collect = false;
  let latencies = [];
  const check = () => {
    if (count < target) return;
    target = Infinity;
    process.send({ cmd: 'done', doneAt: now(), count, latencies: collect ? latencies : undefined });
  };
  const c = await sys.consumer(
    cfg,
    (item) => collect && latencies.push(now() - item.t),
    (k = 1) => {
      count += k;
      check();
    },
  );
  process.on('message', (m) => {
    if (m.cmd === 'expect') {
      target = m.total;
      collect = !!m.collect;
      if (!m.keep) latencies = [];
      check();
    }
    if (m.cmd === 'close') c.close().finally(() => process.exit(0));
  });
}
process.send({ cmd: 'ready' });
