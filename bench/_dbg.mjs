import * as ours from './systems/ours.mjs';
import { mkdtempSync } from 'node:fs';
import { now } from './measure.mjs';
const logDir = mkdtempSync('/tmp/bench-dbg-');
const { cfg, processes } = await ours.prepare({ id: 'dbg' + Date.now().toString(36), logDir });
const p = await ours.producer(cfg);
const get = async (path) => { const t = now(); const r = await fetch(cfg.base + path, { headers: { authorization: `Bearer ${cfg.key}` } }); await r.text(); return now() - t; };
for (const conc of [1, 10]) {
  const lat = []; let n = 0; const t0 = now();
  await Promise.all(Array.from({ length: conc }, async () => { while (n < 300) { n++; const t = now(); await p.sendOne({}); lat.push(now() - t); } }));
  lat.sort((a, b) => a - b);
  console.log(`POST /v1/tasks conc ${conc}: ${(300 / ((now() - t0) / 1000)).toFixed(0)}/s p50 ${lat[150].toFixed(1)} p99 ${lat[296].toFixed(1)} ms`);
}
const g = []; for (let i = 0; i < 100; i++) g.push(await get('/health/live')); g.sort((a, b) => a - b);
console.log(`GET /health/live p50 ${g[50].toFixed(1)} ms`);
const l = []; for (let i = 0; i < 100; i++) l.push(await get('/v1/tasks?limit=20')); l.sort((a, b) => a - b);
console.log(`GET /v1/tasks p50 ${l[50].toFixed(1)} p99 ${l[98].toFixed(1)} ms`);
for (const c of Object.values(processes)) await c.stop();
await ours.cleanup(cfg);
