/** 5. Crash-looping demo.crash tasks mixed with healthy ones: they end failed, the others are not held up. */
import { sleepSpec } from '../lib/client';
import { settle } from '../lib/invariants';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

export const crashLoop: Scenario = {
  id: 'crash-loop',
  title: 'crash-looping demo.crash tasks mixed with healthy ones',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.crashLoop;
    const since = Date.now();
    const client = await ctx.client('crash-loop');
    const t0 = Date.now();
    const crashing = await client.submitMany(
      Array.from({ length: p.crashing }, () => ({ type: 'demo.crash', payload: { afterMs: 300 }, maxAttempts: 2 })),
    );
    const healthy = await client.submitMany(Array.from({ length: p.healthy }, () => sleepSpec(200, 1000)));
    const healthyIds = healthy.map((t) => t.id);
    const healthyMs = await settle(stack.db, healthyIds, profile.settleMs);
    const ids = [...crashing, ...healthy].map((t) => t.id);
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, t0);
    await stack.allReady(90_000);
    const crashRows = (
      await stack.db.query(`SELECT status, error->>'code' AS code, attempt FROM tasks WHERE id = ANY($1::uuid[])`, [
        crashing.map((t) => t.id),
      ])
    ).rows as { status: string; code: string; attempt: number }[];
    const healthyOk = (
      await stack.db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`, [
        healthyIds,
      ])
    ).rows[0].n as number;
    const crashes = stack.crashes(since).filter((e) => e.name.startsWith('worker')).length;
    return {
      tasks,
      recoverMs,
      extra: [
        check(
          'crash-looping tasks end failed',
          crashRows.every((r) => r.status === 'failed'),
          crashRows.map((r) => `${r.status}/${r.code}/attempt ${r.attempt}`).join(', '),
        ),
        check(
          'healthy tasks all succeeded',
          healthyOk === p.healthy,
          `${healthyOk}/${p.healthy}, all terminal in ${healthyMs ?? 'never'} ms`,
        ),
        noCrashes(ctx, since, true),
      ],
      notes: [
        `${crashes} worker crashes caused by ${p.crashing} demo.crash tasks (maxAttempts 2); healthy tasks finished ${healthyMs} ms after submit`,
      ],
    };
  },
};
