// node bench/profile-summary.mjs <dir> [--top 15]
// Summarises the V8 CPU profiles a bench run wrote with
//   BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>" npm run bench -- ...
// as markdown: per process (api, worker, client), where its busy time went, by self time of the
// top functions and by package (inclusive). Sampling is by wall clock: on a machine with more
// runnable processes than cores, time spent descheduled lands on whatever was running (often a
// syscall such as writev), so read it from a quiet run.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '15' } },
  allowPositionals: true,
});
const dir = positionals[0];
if (!dir) throw new Error('usage: node bench/profile-summary.mjs <dir> [--top 15]');
const TOP = Number(values.top);

/** The process a profile belongs to, from the scripts it ran. */
function roleOf(text) {
  const m = text.match(/dist\/apps\/([a-z]+)\/main\.js/);
  if (m) return m[1];
  if (text.includes('bench/child.mjs')) return 'bench client';
  return 'other';
}

/** Where a frame's code lives: a package, our bundle, Node itself, or native/VM work. */
function placeOf(url) {
  const pkg = url.match(/node_modules\/((@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  if (url.includes('dist/apps/')) return 'ours (the built app)';
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  return url ? 'other js' : 'native, VM, GC';
}

function summarise(file) {
  const text = readFileSync(file, 'utf8');
  const p = JSON.parse(text);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const time = new Map();
  let total = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    if (byId.get(id).callFrame.functionName === '(idle)') idle += dt;
    else time.set(id, (time.get(id) ?? 0) + dt);
  });
  const busy = total - idle;
  const self = new Map();
  const places = new Map();
  for (const [id, dt] of time) {
    const cf = byId.get(id).callFrame;
    const name = `${cf.functionName || '(anonymous)'} (${placeOf(cf.url)})`;
    self.set(name, (self.get(name) ?? 0) + dt);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      if (byId.get(cur).callFrame.functionName === '(root)') break;
      const place = placeOf(byId.get(cur).callFrame.url);
      if (seen.has(place)) continue;
      seen.add(place);
      places.set(place, (places.get(place) ?? 0) + dt);
    }
  }
  const pct = (dt) => `${((dt / busy) * 100).toFixed(1)}%`;
  const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  return [
    `### ${roleOf(text)} (${file.split('/').pop()})`,
    '',
    `busy ${(busy / 1e6).toFixed(1)} s of ${(total / 1e6).toFixed(1)} s sampled`,
    '',
    '| self time, top functions | share of busy |',
    '| --- | ---: |',
    ...top(self).map(([k, dt]) => `| ${k.replace(/\|/g, '\\|')} | ${pct(dt)} |`),
    '',
    '| inclusive, by package | share of busy |',
    '| --- | ---: |',
    ...top(places).map(([k, dt]) => `| ${k} | ${pct(dt)} |`),
    '',
  ].join('\n');
}

const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
if (files.length === 0) throw new Error(`no .cpuprofile files in ${dir}`);
console.log(files.map((f) => summarise(join(dir, f))).join('\n'));
