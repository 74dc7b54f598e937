// Shared measurement helpers: clocks, /proc sampling (CPU and memory per process), percentiles,
// child processes with logs, free ports, bulk submits.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const now = () => performance.timeOrigin + performance.now(); // wall clock, sub-ms, comparable across processes
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export async function waitUntil(what, check, timeoutMs = 60_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
/** p50/p95/p99/max of unsorted samples; undefined for none. */
export function pcts(xs) {
  if (!xs) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.at(-1) };
}
/** A number for the report: thousands separators, `d` decimals; '-' when not a number. */
export const fmt = (x, d = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '-';
export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** CPU seconds a process used (own + reaped children, so a postmaster counts its exited backends). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // utime stime cutime cstime
  } catch {
    return 0; // gone
  }
}

function memKb(pid, key) {
  try {
    const file = key === 'Pss' ? `/proc/${pid}/smaps_rollup` : `/proc/${pid}/status`;
    const m = readFileSync(file, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Pids whose command name (comm) is exactly `name`. */
export function pidsByName(name) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The shared services, found by process name; each is a group of pids summed together. */
export const SERVICES = { postgres: 'postgres', rabbitmq: 'beam.smp', redis: 'redis-server' };

/** Total busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f; // idle and iowait left out
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/**
 * Measures named groups of processes: `pids()` is re-evaluated at each reading (backends come and
 * go). CPU: a group's total is the sum over its live pids (the postmaster's reaped-children time
 * covers backends that exited). Memory: own processes by VmRSS; service groups by the sum of
 * Pss (proportional, so shared buffers are not counted once per backend), sampled every 200 ms.
 */
export class ProcessMeter {
  constructor() {
    this.groups = new Map(); // name -> { pids: () => number[], mem: 'VmRSS'|'Pss', peakKb }
    this.timer = undefined;
  }
  add(name, pids, mem = 'VmRSS') {
    this.groups.set(name, { pids, mem, peakKb: 0 });
  }
  addServices(names) {
    for (const n of names) this.add(n, () => pidsByName(SERVICES[n]), 'Pss');
  }
  cpu() {
    const out = { machine: machineBusySeconds() };
    for (const [name, g] of this.groups) out[name] = g.pids().reduce((s, pid) => s + cpuSeconds(pid), 0);
    return out;
  }
  /** CPU seconds used by each group between two `cpu()` readings, plus `other` (rest of the machine). */
  static diff(a, b) {
    const out = {};
    let ours = 0;
    for (const k of Object.keys(b)) {
      if (k === 'machine') continue;
      out[k] = Math.max(0, b[k] - (a[k] ?? 0));
      ours += out[k];
    }
    out.other = Math.max(0, b.machine - a.machine - ours);
    return out;
  }
  static kb(g) {
    return g.pids().reduce((s, pid) => s + memKb(pid, g.mem), 0);
  }
  sample() {
    for (const g of this.groups.values()) g.peakKb = Math.max(g.peakKb, ProcessMeter.kb(g));
  }
  /** Memory of the named groups (default: all) right now, MB; the peaks are left alone. */
  current(names = [...this.groups.keys()]) {
    return Object.fromEntries(names.map((n) => [n, ProcessMeter.kb(this.groups.get(n)) / 1024]));
  }
  start(everyMs = 200) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  stop() {
    clearInterval(this.timer);
    this.sample();
    return Object.fromEntries([...this.groups].map(([n, g]) => [n, g.peakKb / 1024])); // MB
  }
}

/** A child process with its output in `<logDir>/<name>.log`; `stop()` sends SIGTERM, then SIGKILL. */
export function startProcess(name, args, { env = {}, logDir, ipc = false } = {}) {
  const log = openSync(join(logDir, `${name}.log`), 'a');
  // BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) goes to every process the bench starts.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log, ...(ipc ? ['ipc'] : [])],
  });
  child.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exited;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const r = await child.exited;
    clearTimeout(t);
    return r;
  };
  return child;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Sends n items through `p.sendBatch(items)` in batches of `batch`, `inflight` batches at a time;
 * each item is {i, t} (t: when its batch was sent).
 */
export async function bulk(p, { n, batch, inflight }) {
  let next = 0;
  const startAt = now();
  const lane = async () => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + batch);
      const t = now();
      const items = [];
      for (let i = from; i < next; i++) items.push({ i, t });
      await p.sendBatch(items);
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  return { startAt, endAt: now() };
}
