/**
 * 7. Cancel storm: random cancels while tasks queue and run. A task whose cancel was accepted (202)
 * must end cancelled; none may report success after its cancelled event; one terminal state each.
 */
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

export const cancelStorm: Scenario = {
  id: 'cancel-storm',
  title: 'random cancels of queued and running tasks',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.cancelStorm;
    const since = Date.now();
    const client = await ctx.client('cancel-storm');
    const ids: string[] = [];
    const accepted = new Set<string>();
    const answers: Record<string, number> = {};
    const end = Date.now() + p.durationMs;
    const submitting = (async () => {
      const chunk = Math.ceil(p.tasks / 10);
      for (let i = 0; i < p.tasks; i += chunk) {
        ids.push(
          ...(
            await client.submitMany(Array.from({ length: Math.min(chunk, p.tasks - i) }, () => sleepSpec(300, 4000)))
          ).map((t) => t.id),
        );
        await sleep(p.durationMs / 12);
      }
    })();
    const cancelling = (async () => {
      while (Date.now() < end || ids.length < p.tasks) {
        await sleep(20 + Math.random() * 60);
        if (ids.length === 0 || Math.random() < 0.4) continue;
        const id = ids[Math.floor(Math.random() * ids.length)];
        const status = await client.cancel(id);
        answers[status] = (answers[status] ?? 0) + 1;
        if (status === 202) accepted.add(id);
      }
    })();
    await Promise.all([submitting, cancelling]);
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, Date.now());
    const notCancelled = (
      await stack.db.query(`SELECT id, status FROM tasks WHERE id = ANY($1::uuid[]) AND status <> 'cancelled'`, [
        [...accepted],
      ])
    ).rows as { id: string; status: string }[];
    const unexpected = Object.keys(answers).filter((s) => !['202', '409'].includes(s));
    return {
      tasks,
      recoverMs,
      extra: [
        check(
          'every accepted cancel ends cancelled',
          notCancelled.length === 0,
          `${accepted.size} accepted; not cancelled: ${notCancelled.map((r) => `${r.id}=${r.status}`).join(', ') || 'none'}`,
        ),
        check('cancel answers are 202 or 409 only', unexpected.length === 0, JSON.stringify(answers)),
        noCrashes(ctx, since),
      ],
      notes: [
        `${Object.values(answers).reduce((a, b) => a + b, 0)} cancel requests (answers ${JSON.stringify(answers)}), ${accepted.size} distinct tasks cancelled`,
      ],
    };
  },
};
