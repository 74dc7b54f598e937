/**
 * 4. kill -9 of the api between writing tasks and relaying their outbox rows.
 *
 * Workers run an outbox relay too, so they are stopped first: the only relay is the api's, and a
 * row it committed but had not published when it died waits in the outbox for the restarted api.
 * Phase A: a batch in four concurrent requests; the api is killed when the first answer arrives,
 * so some batches are committed and unrelayed, some committed but unanswered, some never written.
 * Phase B: single submits with Idempotency-Keys; the api is killed a third of the way through and
 * restarted; clients retry with their keys: every key must map to exactly one task.
 * Checked over every task row of the scenario's owners (also those whose answer was lost).
 */
import { randomUUID } from 'node:crypto';
import { waitFor } from '@tasksys/testing';
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

export const apiKill: Scenario = {
  id: 'api-kill',
  title: 'kill -9 of the api between writing tasks and relaying them',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.apiKill;
    const since = Date.now();
    const a = await ctx.client('api-kill-a');
    const b = await ctx.client('api-kill-b');

    for (const w of stack.workers) {
      w.keepDown = true; // the supervisor leaves them down until phase B
      await w.kill('SIGKILL');
    }

    // Phase A
    const chunk = Math.ceil(p.batch / 4);
    const answered: string[] = [];
    let killed = false;
    let outboxAtKill = -1;
    const onFirst = async () => {
      if (killed) return;
      killed = true;
      stack.api.keepDown = true;
      await stack.api.kill('SIGKILL');
      outboxAtKill = (await stack.db.query(`SELECT count(*)::int AS n FROM outbox`)).rows[0].n as number;
    };
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        try {
          const r = await a.request('POST', '/v1/tasks/batch', {
            tasks: Array.from({ length: chunk }, () => sleepSpec(100, 800)),
          });
          if (r.status === 201) answered.push(...(r.json as { items: { id: string }[] }).items.map((t) => t.id));
          await onFirst();
        } catch {
          /* connection reset by the kill: unanswered */
        }
      }),
    );
    const rowsA = (await stack.db.query(`SELECT id FROM tasks WHERE owner = $1`, [a.owner])).rows.map(
      (r) => r.id as string,
    );
    ctx.log(
      `api killed: ${answered.length} tasks answered, ${rowsA.length} rows written, ${outboxAtKill} outbox rows unrelayed`,
    );
    await stack.startApi();
    const tApi = Date.now();
    await waitFor(
      'outbox drained by the restarted api',
      async () => (await stack.db.query(`SELECT count(*)::int AS n FROM outbox`)).rows[0].n === 0,
      60_000,
    );
    const drainMs = Date.now() - tApi;
    // Tasks, not messages: a batch's tasks travel in bundles.
    const queuedIds = new Set(await stack.queuedTaskIds('chaos.work.demo.sleep'));
    const queued = rowsA.filter((id) => queuedIds.has(id)).length;

    // Phase B (workers back, so tasks also run)
    await Promise.all(stack.workers.map((w) => stack.restartWorker(w)));
    const keys = Array.from({ length: p.burst }, () => randomUUID());
    let done = 0;
    let bKilled = false;
    const burst = (async () => {
      const ids: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < keys.length) {
            const key = keys[next++];
            const spec = sleepSpec(200, 1500);
            for (;;) {
              try {
                const r = await b.request('POST', '/v1/tasks', spec, { 'idempotency-key': key });
                if (r.status === 200 || r.status === 201) {
                  ids.push((r.json as { id: string }).id);
                  break;
                }
              } catch {
                /* api down: retry with the same key */
              }
              await sleep(200);
            }
            done++;
          }
        }),
      );
      return ids;
    })();
    await waitFor('a third of the burst', () => done >= p.burst / 3, 60_000, 20);
    stack.api.keepDown = true;
    await stack.api.kill('SIGKILL');
    bKilled = true;
    await sleep(1000);
    await stack.startApi();
    const tB = Date.now();
    const idsB = await burst;
    const rowsB = (await stack.db.query(`SELECT id FROM tasks WHERE owner = $1`, [b.owner])).rows.map(
      (r) => r.id as string,
    );

    const all = [...rowsA, ...rowsB];
    const { tasks, recoverMs } = await settleAndCheck(ctx, all, tB);
    const missing = [...answered, ...idsB].filter((id) => !all.includes(id)).length;
    return {
      tasks,
      recoverMs,
      extra: [
        check('every answered task has a row', missing === 0, `${missing} missing`),
        check(
          'outbox rows left by the killed api were relayed by its successor',
          queued >= rowsA.length,
          `${outboxAtKill} rows pending at the kill; drained ${drainMs} ms after restart; ${queued} of the ${rowsA.length} rows' tasks in the work queue`,
        ),
        check(
          'one task per Idempotency-Key across the api crash',
          rowsB.length === p.burst && new Set(idsB).size === p.burst,
          `${rowsB.length} rows for ${p.burst} keys (api killed: ${bKilled})`,
        ),
        noCrashes(ctx, since),
      ],
      notes: [
        `phase A: ${answered.length} of ${chunk * 4} batch tasks answered before the kill, ${rowsA.length} rows committed, ${outboxAtKill} outbox rows unrelayed at the kill (workers stopped, so only the restarted api could relay them)`,
        `phase B: api killed after ${Math.round(p.burst / 3)} of ${p.burst} keyed submits and restarted; clients retried with the same keys`,
      ],
    };
  },
};
