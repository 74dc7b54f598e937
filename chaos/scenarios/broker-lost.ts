/**
 * 10. The broker forgets: (a) the work queue purged while no worker runs; (b) the broker node reset
 * (every queue, exchange and message gone) with tasks queued, running and waiting in retry tiers.
 * PostgreSQL is the source of truth: the sweeper re-enqueues what the broker lost, without an operator.
 */
import { waitFor } from '@tasksys/testing';
import { sleepSpec } from '../lib/client';
import { checkTasks } from '../lib/invariants';
import { sleep } from '../lib/processes';
import { type Scenario, check, fleetBack, noCrashes, settleAndCheck } from '../lib/scenario';
import { NAMESPACE } from '../lib/stack';

export const brokerLost: Scenario = {
  id: 'broker-lost',
  title: 'the broker loses its messages: work queue purged with no worker running, then a node reset mid-run',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.brokerLost;
    const since = Date.now();
    const client = await ctx.client('broker-lost');
    const workQueue = `${NAMESPACE}.work.demo.sleep`;

    // (a) No worker runs; the api publishes the tasks; then the broker drops them.
    for (const w of stack.workers) w.keepDown = true;
    await Promise.all(stack.aliveWorkers().map((w) => w.kill('SIGTERM')));
    const purged = (await client.submitMany(Array.from({ length: p.purged }, () => sleepSpec(50, 300)))).map(
      (t) => t.id,
    );
    await waitFor(
      `${p.purged} messages in ${workQueue}`,
      async () => (await stack.queueDepth(workQueue)) >= p.purged,
      30_000,
    );
    const ch = await stack.channel();
    await ch.purgeQueue(workQueue);
    await ch.close();
    ctx.log(`purged ${p.purged} messages from ${workQueue} with no worker running`);
    const tPurge = Date.now();
    for (const w of stack.workers) w.keepDown = false;
    await fleetBack(ctx);
    const a = await settleAndCheck(ctx, purged, tPurge);
    ctx.log(`purged tasks recovered in ${a.recoverMs} ms`);

    // (b) Tasks running, retrying (failTimes 1) and queued behind them, then `rabbitmqctl reset`.
    const mixed = (
      await client.submitMany([
        ...Array.from({ length: p.reset }, (_, i) =>
          i % 3 === 0 ? sleepSpec(100, 400, { failTimes: 1 }) : sleepSpec(1000, 3000),
        ),
      ])
    ).map((t) => t.id);
    await sleep(800);
    const at: { status: string; n: number }[] = (
      await stack.db.query(
        `SELECT status, count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) GROUP BY status ORDER BY status`,
        [mixed],
      )
    ).rows;
    const atReset = at.map((r) => `${r.status} ${r.n}`).join(', ');
    const tStop = Date.now();
    await stack.rabbit.stopApp();
    await stack.rabbit.ctl('reset');
    await stack.rabbit.startApp();
    ctx.log(`broker node reset (all queues and messages gone) in ${Date.now() - tStop} ms`);
    const tReset = Date.now();
    const readyAfter = await fleetBack(ctx);
    const b = await settleAndCheck(ctx, mixed, tReset);

    const tasks = await checkTasks(stack.db, [...purged, ...mixed]);
    return {
      tasks,
      recoverMs: a.recoverMs === null || b.recoverMs === null ? null : Math.max(a.recoverMs, b.recoverMs),
      extra: [
        check('purged tasks recovered without an operator', a.recoverMs !== null, `${a.recoverMs} ms after the purge`),
        check('tasks recovered after the node reset', b.recoverMs !== null, `${b.recoverMs} ms after the reset`),
        check('api and workers ready after the reset', true, `${readyAfter} ms`),
        noCrashes(ctx, since),
      ],
      notes: [
        `(a) ${p.purged} queued tasks whose messages were purged with no worker running: all recovered ${a.recoverMs} ms after the purge`,
        `(b) ${p.reset} tasks (a third failing once) when the node was reset (${atReset}): all terminal ${b.recoverMs} ms after it`,
      ],
    };
  },
};
