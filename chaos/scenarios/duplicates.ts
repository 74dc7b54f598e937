/**
 * 6. Duplicates: every task message is published again (twice more) straight to the work exchange,
 * half racing the original, half after the task has finished: no outcome may be recorded twice.
 */
import { waitFor } from '@tasksys/testing';
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';
import { NAMESPACE } from '../lib/stack';

export const duplicates: Scenario = {
  id: 'duplicates',
  title: 'every message published again (x2) straight to the work exchange',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.duplicates;
    const since = Date.now();
    const client = await ctx.client('duplicates');
    const ch = await stack.channel();
    const tasks0 = await client.submitMany(Array.from({ length: p.tasks }, () => sleepSpec(200, 1500)));
    const publishCopies = (ts: typeof tasks0) => {
      for (const t of ts) {
        for (let c = 0; c < p.copies; c++) {
          const body = Buffer.from(JSON.stringify({ v: 1, taskId: t.id, type: 'demo.sleep' }));
          ch.publish(NAMESPACE, 'demo.sleep', body, {
            persistent: true,
            contentType: 'application/json',
            correlationId: t.id,
            messageId: `dup-${t.id}-${c}`,
          });
        }
      }
    };
    const half = Math.floor(tasks0.length / 2);
    publishCopies(tasks0.slice(0, half)); // racing the originals
    await sleep(1500);
    publishCopies(tasks0.slice(half)); // some race, most hit running or finished tasks
    const faultEnd = Date.now();
    const ids = tasks0.map((t) => t.id);
    await settleAndCheck(ctx, ids, faultEnd);
    // every copy consumed (work and retry queues empty; deferred copies come back through the tiers)
    await waitFor(
      'copies consumed',
      async () => {
        for (const q of ['chaos.work.demo.sleep', 'chaos.retry.200ms', 'chaos.retry.1s', 'chaos.retry.5s'])
          if ((await stack.queueDepth(q)) > 0) return false;
        return true;
      },
      60_000,
      250,
    );
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, faultEnd);
    await ch.close().catch(() => undefined);
    return {
      tasks,
      recoverMs,
      extra: [check('copies published', true, `${tasks0.length * p.copies} extra messages`), noCrashes(ctx, since)],
      notes: [
        `${tasks0.length * p.copies} copies published with amqplib: half right after submit (racing the original), half later`,
      ],
    };
  },
};
