/** 1. kill -9 of a random worker every few seconds while tasks run; the harness restarts them. */
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, fleetBack, noCrashes, settleAndCheck } from '../lib/scenario';

export const workerKill: Scenario = {
  id: 'worker-kill',
  title: 'kill -9 of a random worker every few seconds (restarted)',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.workerKill;
    const since = Date.now();
    const client = await ctx.client('worker-kill');
    // submissions spread over the first half of the fault window
    const specs = Array.from({ length: p.tasks }, () => sleepSpec(300, 2500));
    const submitting = (async () => {
      const out: string[] = [];
      const perChunk = Math.ceil(p.tasks / 10);
      for (let i = 0; i < p.tasks; i += perChunk) {
        // A batch per chunk: its tasks travel in bundles, so a kill takes bundles down half done.
        out.push(...(await client.submitBatch(specs.slice(i, i + perChunk))).map((t) => t.id));
        await sleep(p.durationMs / 20);
      }
      return out;
    })();
    let kills = 0;
    const end = Date.now() + p.durationMs;
    while (Date.now() < end) {
      await sleep(p.killEveryMs * (0.5 + Math.random()));
      const alive = stack.aliveWorkers();
      if (alive.length === 0) continue;
      const victim = alive[Math.floor(Math.random() * alive.length)];
      await victim.kill('SIGKILL');
      ctx.log(`kill -9 ${victim.name}`);
      kills++;
    }
    const ids = await submitting;
    const faultEnd = Date.now();
    const back = await fleetBack(ctx);
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, faultEnd);
    return {
      tasks,
      recoverMs,
      extra: [
        check('workers killed', kills > 0, `${kills} kill -9; fleet ready ${back} ms after the last`),
        noCrashes(ctx, since),
      ],
      notes: [
        `${kills} workers killed with SIGKILL over ${p.durationMs / 1000} s, each restarted by the harness's supervisor`,
      ],
    };
  },
};
