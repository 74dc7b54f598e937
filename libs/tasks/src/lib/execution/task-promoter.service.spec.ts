import type { Topology } from '@tasksys/messaging';
import type { Task } from '../entities';
import type { PromotionResult, TaskStateMachine } from '../task-state-machine';
import type { ExecutionMetrics } from './execution.metrics';
import { PROMOTE_MAX_SLEEP_MS, TaskPromoter } from './task-promoter.service';
import type { WorkerConfig } from './worker.config';

/**
 * The promoter's round with a fake state machine: what it asks the database, when it wakes the
 * relay and how long it sleeps (the real statements are in task-state-machine.int-spec.ts, the
 * punctuality with real workers in apps/worker/src/scheduled.processes.e2e-spec.ts).
 */
function promoter(probe: (number | null | Error)[], rounds: PromotionResult[]) {
  const calls: string[] = [];
  const tasks = {
    nextDueInMs: async (types: readonly string[]) => {
      calls.push(`probe ${types.join(',')}`);
      const next = probe.shift();
      if (next instanceof Error) throw next;
      return next ?? null;
    },
    promoteDue: async (types: readonly string[], limit: number, actor: string) => {
      calls.push(`promote ${types.join(',')} ${limit} ${actor}`);
      return rounds.shift() ?? { promoted: [], nextDueInMs: null };
    },
  } as unknown as TaskStateMachine;
  const observed: number[] = [];
  const metrics = { promotionLateness: { observe: (_: unknown, s: number) => observed.push(s) } };
  const p = new TaskPromoter(
    tasks,
    { served: ['demo.sleep', 'sql.query'] } as unknown as Topology,
    metrics as unknown as ExecutionMetrics,
    { WORKER_ID: 'w1' } as WorkerConfig,
  );
  let wakes = 0;
  p['onPromoted'] = () => void wakes++;
  return { p, calls, observed, wakes: () => wakes };
}

const task = (lateMs: number) =>
  ({ type: 'demo.sleep', runAt: new Date(1_000_000), updatedAt: new Date(1_000_000 + lateMs) }) as Task;
const batch = (n: number, nextDueInMs: number | null): PromotionResult => ({
  promoted: Array.from({ length: n }, () => task(40)),
  nextDueInMs,
});

describe('TaskPromoter round', () => {
  it('with nothing due only probes, writes nothing, and sleeps until the next due time', async () => {
    const f = promoter([120], []);
    await expect(f.p.promoteOnce()).resolves.toEqual({ promoted: 0, sleepMs: 120 });
    expect(f.calls).toEqual(['probe demo.sleep,sql.query']);
    expect(f.wakes()).toBe(0);
  });

  it(`sleeps at most ${PROMOTE_MAX_SLEEP_MS} ms, so a task submitted meanwhile is seen in time`, async () => {
    await expect(promoter([3_600_000], []).p.promoteOnce()).resolves.toEqual({ promoted: 0, sleepMs: 250 });
    await expect(promoter([null], []).p.promoteOnce()).resolves.toEqual({ promoted: 0, sleepMs: 250 });
  });

  it('promotes due tasks in batches until a batch is not full, wakes the relay after each, and sleeps until the next', async () => {
    const f = promoter([-5], [batch(1000, 10), batch(3, 80)]);
    await expect(f.p.promoteOnce()).resolves.toEqual({ promoted: 1003, sleepMs: 80 });
    expect(f.calls).toEqual([
      'probe demo.sleep,sql.query',
      'promote demo.sleep,sql.query 1000 w1',
      'promote demo.sleep,sql.query 1000 w1',
    ]);
    expect(f.wakes()).toBe(2);
    expect(f.observed).toHaveLength(1003);
    expect(f.observed[0]).toBeCloseTo(0.04);
  });

  it('never spins: a due task another promoter holds leaves it sleeping a few ms, not looping', async () => {
    const f = promoter([0], [{ promoted: [], nextDueInMs: -1 }]);
    const round = await f.p.promoteOnce();
    expect(round.promoted).toBe(0);
    expect(round.sleepMs).toBeGreaterThanOrEqual(5);
    expect(f.wakes()).toBe(0);
  });

  it('survives a failing database: no throw, a longer sleep, and the next round catches up', async () => {
    const f = promoter([new Error('connection refused'), -1], [batch(2, null)]);
    await expect(f.p.promoteOnce()).resolves.toEqual({ promoted: 0, sleepMs: 1000 });
    await expect(f.p.promoteOnce()).resolves.toEqual({ promoted: 2, sleepMs: 250 });
  });
});
