/**
 * What one state-machine statement costs by itself, for one task and per task of a batch: the real
 * TaskStateMachine.createMany, claimMany and succeedMany on a scratch schema of the test database
 * (dropped afterwards), one call at a time. Per call: wall time, this process's CPU and the whole
 * machine's busy time (PostgreSQL plus this process: run it on a quiet machine). A single submit,
 * claim or completion pays a statement's fixed cost (planning, the CTE's set-up, the statement
 * triggers, the commit) alone; a batch shares it.
 *
 *   npx ts-node --transpile-only -P chaos/tsconfig.json -r ./chaos/lib/register-paths.ts bench/statement-cost.ts \
 *     [--calls 400] [--prefill 0] [--plan-cache-mode force_custom_plan|auto|force_generic_plan]
 *
 * --plan-cache-mode overrides the pool's setting (force_custom_plan, data-source.options.ts) on
 * every connection, to see what planning costs; --prefill first fills the table with that many
 * queued tasks, then ANALYZE.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pgPool } from '../libs/tasks/src/lib/prepared-query';
import { newTaskId } from '../libs/tasks/src/lib/task-id';
import { TaskStateMachine } from '../libs/tasks/src/lib/task-state-machine';
import { createTestDatabase } from '../libs/tasks/src/lib/testing/test-database';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '400' },
    prefill: { type: 'string', default: '0' },
    'plan-cache-mode': { type: 'string' },
  },
});
const CALLS = Number(args.calls);
const PREFILL = Number(args.prefill);
const MODE = args['plan-cache-mode'];
if (!(CALLS >= 200 && CALLS % 200 === 0)) throw new Error('--calls must be a multiple of 200');
if (MODE && !['force_custom_plan', 'auto', 'force_generic_plan'].includes(MODE))
  throw new Error('--plan-cache-mode: force_custom_plan, auto or force_generic_plan');

/** Busy time of the whole machine in ms (/proc/stat: user, nice, system, irq, softirq). */
function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) * 10;
}

const row = () => ({
  id: newTaskId(),
  owner: 'bench',
  type: 'demo.sleep',
  payload: { ms: 0 },
  maxAttempts: 3,
  timeoutMs: 60_000,
  start: true,
  actor: 'owner:bench',
});

async function main(): Promise<void> {
  process.env['TEST_DATABASE_URL'] ??= 'postgres://postgres@127.0.0.1:5432/test';
  const t = await createTestDatabase({ poolSize: 3 });
  try {
    if (MODE) {
      // On each pooled connection the first time it is handed out, queued before the caller's query.
      const set = new WeakSet<object>();
      pgPool(t.db).on('acquire', (client) => {
        if (set.has(client)) return;
        set.add(client);
        void client.query(`SET plan_cache_mode = ${MODE}`);
      });
    }
    const sm = new TaskStateMachine(t.db, null, { TASK_BUNDLE_SIZE: 100 });
    for (let done = 0; done < PREFILL; done += 1000)
      await sm.createMany(Array.from({ length: Math.min(1000, PREFILL - done) }, row));
    if (PREFILL) await t.db.query('ANALYZE');
    const [{ mode }] = await t.db.query(`SELECT current_setting('plan_cache_mode') AS mode`);
    console.log(`plan_cache_mode ${mode}, ${PREFILL} tasks in the table, ${CALLS} calls a phase\n`);
    console.log('| statement | wall ms | machine CPU ms | node CPU ms |\n| --- | ---: | ---: | ---: |');

    const phase = async (name: string, tasks: number, call: (i: number) => Promise<unknown>) => {
      const m0 = machineBusyMs();
      const u0 = process.cpuUsage();
      const w0 = performance.now();
      for (let i = 0; i < CALLS; i++) await call(i);
      const per = (x: number) => (x / tasks).toFixed(2);
      const u = process.cpuUsage(u0);
      console.log(
        `| ${name} | ${per(performance.now() - w0)} | ${per(machineBusyMs() - m0)} | ${per((u.user + u.system) / 1000)} |`,
      );
    };
    for (let round = 0; round < 2; round++) {
      // The first round warms the connections' prepared statements; the second is the one to read.
      const ids: string[] = [];
      const label = (s: string) => (round === 0 ? `${s} (warm-up)` : s);
      await phase(label('createMany, 1 task'), CALLS, async () => {
        const r = row();
        ids.push(r.id);
        await sm.createMany([r]);
      });
      await phase(label('claimMany, 1 task'), CALLS, (i) => sm.claimMany([ids[i]], 'bench', 30_000));
      await phase(label('succeedMany, 1 task'), CALLS, (i) =>
        sm.succeedMany([{ id: ids[i], token: 1, result: null }], 'bench'),
      );
      const batch = Array.from({ length: CALLS }, row);
      const bids = batch.map((b) => b.id);
      await phase(label(`createMany, ${CALLS} tasks, per task`), CALLS, async (i) => {
        if (i === 0) await sm.createMany(batch);
      });
      await phase(label('claimMany, 200 tasks, per task'), CALLS, async (i) => {
        if (i % 200 === 0) await sm.claimMany(bids.slice(i, i + 200), 'bench', 30_000);
      });
      await phase(label('succeedMany, 200 tasks, per task'), CALLS, async (i) => {
        if (i % 200 === 0)
          await sm.succeedMany(
            bids.slice(i, i + 200).map((id) => ({ id, token: 1, result: null })),
            'bench',
          );
      });
    }
  } finally {
    await t.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
