/** 3. PostgreSQL crash-restart (pg_ctl stop -m immediate, start) in the middle of a run. */
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

export const postgres: Scenario = {
  id: 'postgres-restart',
  title: 'PostgreSQL crash-restart (immediate stop) mid-run',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.postgres;
    const since = Date.now();
    const client = await ctx.client('postgres');
    const half = Math.ceil(p.tasks / 2);
    const ids: string[] = (await client.submitMany(Array.from({ length: half }, () => sleepSpec(500, 3000)))).map(
      (t) => t.id,
    );
    await sleep(1500);

    const tStop = Date.now();
    await stack.pg.stop('immediate');
    ctx.log('PostgreSQL stopped (immediate)');
    // submissions during the outage are refused (5xx or connection errors); the client retries
    // with the same Idempotency-Key until the database is back
    const during = client.submitMany(
      Array.from({ length: p.tasks - half }, () => sleepSpec(300, 2000)),
      4,
    );
    await sleep(p.downMs);
    await stack.pg.startAgain();
    const tStart = Date.now();
    ctx.log(`PostgreSQL back after ${tStart - tStop} ms`);
    ids.push(...(await during).map((t) => t.id));
    await stack.allReady(90_000);
    const readyAfter = Date.now() - tStart;

    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, tStart);
    // idempotent resubmission through the outage: one task per key, so the owner has exactly ids.length tasks
    const owned = (await stack.db.query(`SELECT count(*)::int AS n FROM tasks WHERE owner = $1`, [client.owner]))
      .rows[0].n as number;
    return {
      tasks,
      recoverMs,
      extra: [
        check('api and workers ready after restart', true, `${readyAfter} ms`),
        check(
          'client retries through the outage made no extra task',
          owned === ids.length,
          `${owned} rows for ${ids.length} submissions`,
        ),
        noCrashes(ctx, since),
      ],
      notes: [
        `database down ${tStart - tStop} ms with ${half} tasks in flight; readiness back ${readyAfter} ms after start`,
      ],
    };
  },
};
