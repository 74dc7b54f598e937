import { randomUUID } from 'node:crypto';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, OwnerLimitsService, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { type AppProcess, waitFor } from '@tasksys/testing';
import { workerMetric } from '../test/task-probes';
import { WorkerFleet } from '../test/worker-fleet';

const MANAGEMENT = 'http://127.0.0.1:15672';
const AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
const SLOW_MS = 600;
const PER_OWNER = 40;

/**
 * maxRunning against real worker processes (3 workers, 10 slots each): owner A, limited to 2, floods
 * 40 slow tasks; owner B's 40 fast ones, submitted behind them in the same queue, all finish while A
 * still waits. A's running count, sampled throughout, never passes 2; its held tasks wait in the
 * database (no deferrals, each held at most a few times), so the broker delivers about one message
 * per task plus one per hold, and all of A's tasks finish, each run once.
 */
describe('owner quotas (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let limits: OwnerLimitsService;
  const topology = () => buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) });

  beforeAll(async () => {
    t = await createTestDatabase();
    // One message per task here and in the workers (TASK_BUNDLE_SIZE 1): the test holds its count of
    // deliveries per task against the broker's count of messages delivered.
    sm = new TaskStateMachine(t.db, null, { TASK_BUNDLE_SIZE: 1 });
    limits = new OwnerLimitsService(t.db, sm);
    messaging = testMessagingConfig({ RETRY_TIERS_MS: '500,2000' });
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_CONCURRENCY: '10',
        WORKER_SHUTDOWN_GRACE_MS: '0',
        OUTBOX_POLL_MS: '500',
        TASK_BUNDLE_SIZE: '1',
        SWEEP_INTERVAL_MS: '1000',
        SWEEP_GRACE_MS: '5000',
        WORKER_TASK_TYPES: 'demo.sleep',
        LOG_LEVEL: 'info',
      },
      `${messaging.TASKS_NAMESPACE}-q`,
    );
  }, 60_000);

  afterAll(async () => {
    await fleet?.stopAll();
    if (messaging) await deleteTopology(topology());
    await t?.drop();
  }, 60_000);

  async function submit(owner: string, ms: number): Promise<string[]> {
    const rows = Array.from({ length: PER_OWNER }, () => ({
      id: randomUUID(),
      owner,
      type: 'demo.sleep',
      payload: { ms },
      maxAttempts: 3,
      timeoutMs: 60_000,
      start: true,
      actor: `owner:${owner}`,
      group: owner,
    }));
    await sm.createMany(rows);
    return rows.map((r) => r.id);
  }
  const finished = async (ids: string[]) =>
    (
      await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`, [
        ids,
      ])
    )[0].n as number;
  /**
   * The work queue's deliveries and their rate from the management API (refreshed every few seconds),
   * when the broker has it enabled; null otherwise (the workers' own counters still count them).
   */
  async function queueStats(): Promise<{ delivered: number; rate: number } | null> {
    const name = topology().workQueue('demo.sleep');
    try {
      const res = await fetch(`${MANAGEMENT}/api/queues/%2F/${encodeURIComponent(name)}`, {
        headers: { authorization: AUTH },
      });
      const body = (await res.json()) as {
        message_stats?: { deliver_get?: number; deliver_get_details?: { rate: number } };
      };
      return {
        delivered: body.message_stats?.deliver_get ?? 0,
        rate: body.message_stats?.deliver_get_details?.rate ?? 0,
      };
    } catch {
      return null;
    }
  }
  const sum = async (workers: AppProcess[], name: string) =>
    (await Promise.all(workers.map((w) => workerMetric(w.port, name)))).reduce((a, b) => a + b, 0);

  it('never runs more than 2 of A at once across 3 workers, while B’s tasks finish at once and A’s all finish', async () => {
    const workers = [await fleet.start(), await fleet.start(), await fleet.start()];
    await limits.set('owner-a', { maxRunning: 2 });

    const started = Date.now();
    const a = await submit('owner-a', SLOW_MS);
    const b = await submit('owner-b', 10);

    let maxA = 0;
    let samples = 0;
    let maxRate = 0;
    let stop = false;
    const sampler = (async () => {
      while (!stop) {
        const [{ n }] = await t.db.query(
          `SELECT count(*)::int AS n FROM tasks WHERE owner = 'owner-a' AND status = 'running'`,
        );
        maxA = Math.max(maxA, n);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const rateSampler = (async () => {
      while (!stop) {
        maxRate = Math.max(maxRate, (await queueStats())?.rate ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();

    let bDoneMs = 0;
    let aDoneWhenBDone = 0;
    let aDoneMs = 0;
    try {
      await waitFor('all of B’s tasks succeeded', async () => (await finished(b)) === PER_OWNER, 60_000, 50);
      bDoneMs = Date.now() - started;
      aDoneWhenBDone = await finished(a);
      await waitFor('all of A’s tasks succeeded', async () => (await finished(a)) === PER_OWNER, 120_000, 200);
      aDoneMs = Date.now() - started;
    } finally {
      stop = true;
      await Promise.all([sampler, rateSampler]);
    }
    // Every delivery ends as one of these: a run (one `running` event), a hold, a deferral, a duplicate, a dead letter.
    const held = await sum(workers, 'tasksys_held_deliveries_total');
    const deferrals = await sum(workers, 'tasksys_deferrals_total');
    const others =
      (await sum(workers, 'tasksys_duplicate_deliveries_total')) + (await sum(workers, 'tasksys_dead_letters_total'));
    const [{ runs }] = await t.db.query(
      `SELECT count(*)::int AS runs FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running'`,
      [[...a, ...b]],
    );
    const delivered = runs + held + deferrals + others;
    // The broker's own count, when its management API is on (it lags: wait until it has them all).
    const broker = (await queueStats())
      ? await waitFor(
          'the broker’s delivery count to catch up',
          async () => {
            const stats = await queueStats();
            return stats && stats.delivered >= delivered ? stats : null;
          },
          30_000,
          500,
        )
      : null;
    console.log(
      `A (maxRunning 2, ${PER_OWNER} x ${SLOW_MS} ms) done in ${aDoneMs} ms, max running ${maxA} over ${samples} samples; ` +
        `B (${PER_OWNER} x 10 ms) done in ${bDoneMs} ms with ${aDoneWhenBDone} of A done; deliveries ${delivered} for ` +
        `${2 * PER_OWNER} tasks (runs ${runs}, holds ${held}, deferrals ${deferrals}, other ${others}); ` +
        (broker
          ? `broker: ${broker.delivered} delivered, max rate ${maxRate}/s`
          : 'broker management API not reachable'),
    );

    expect(maxA).toBe(2); // reached, never passed
    // B ran meanwhile, not behind A: A alone needs at least 40 x 600 ms / 2 = 12 s.
    expect(bDoneMs).toBeLessThan(8_000);
    expect(aDoneWhenBDone).toBeLessThan(PER_OWNER / 2);
    expect(aDoneMs).toBeGreaterThanOrEqual((PER_OWNER * SLOW_MS) / 2);
    // Waiting costs the broker nothing: no deferral loop, each of A's tasks held about once.
    expect(deferrals).toBe(0);
    expect(held).toBeLessThanOrEqual(PER_OWNER * 2);
    expect(runs).toBe(2 * PER_OWNER);
    expect(delivered).toBeLessThanOrEqual(2 * PER_OWNER + held);
    if (broker) {
      expect(broker.delivered).toBeLessThanOrEqual(delivered + 5);
      expect(maxRate).toBeLessThan(40);
    }
    // Each ran once, and nothing is left held.
    const perTask: { n: number }[] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running' GROUP BY task_id`,
      [[...a, ...b]],
    );
    expect(perTask.every((r) => r.n === 1) && perTask.length === 2 * PER_OWNER).toBe(true);
    await expect(limits.get('owner-a')).resolves.toMatchObject({ running: 0, queued: 0, held: 0 });
  }, 180_000);
});
