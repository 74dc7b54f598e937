import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { waitFor } from '@tasksys/testing';
import { CreateTaskBatchCommand } from '../commands/create-task-batch.command';
import type { Task } from '../entities';
import { TaskStateMachine } from '../task-state-machine';
import { OwnerQueueFullError } from '../task.errors';
import { createTestDatabase, type TestDatabase } from '../testing/test-database';
import { OwnerLimitsService } from './owner-limits.service';

const LEASE = 30_000;
jest.setTimeout(120_000);
const err = { code: 'TEST.FAILED', message: 'boom' };

/**
 * Per-owner quotas against the real PostgreSQL: maxRunning held at the claim under concurrent
 * claimers (each claim on its own pooled connection), held tasks parked without a message and woken
 * by the statements that free a slot, and maxQueued refused at submit with nothing written.
 */
describe('owner quotas (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  let limits: OwnerLimitsService;
  let batch: CreateTaskBatchCommand;
  let owner = 0;
  /** A fresh owner per test: tests share one schema. */
  const nextOwner = () => `acme${++owner}`;

  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 40 });
    // One message per task: the tests play the broker, taking a task's message by its correlation id.
    sm = new TaskStateMachine(t.db, null, { TASK_BUNDLE_SIZE: 1 });
    limits = new OwnerLimitsService(t.db, sm);
    batch = new CreateTaskBatchCommand(sm);
  });
  afterAll(() => t.drop());

  const base = { type: 'demo.sleep', payload: { ms: 1 }, maxAttempts: 3, timeoutMs: 60_000 };

  async function submit(who: string, n: number, priority = 0): Promise<Task[]> {
    return batch.execute(
      Array.from({ length: n }, () => ({ ...base, owner: who, start: true, priority })),
      { actor: `owner:${who}` },
    );
  }
  const running = async (who: string) =>
    (await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE owner = $1 AND status = 'running'`, [who]))[0]
      .n as number;
  const heldIds = async (who: string) =>
    (
      await t.db.query(
        `SELECT id FROM tasks WHERE owner = $1 AND held_since IS NOT NULL AND status IN ('queued', 'retrying') ORDER BY id`,
        [who],
      )
    ).map((r: { id: string }) => r.id) as string[];
  /** Work messages in the outbox per task (the relay is not running here: nothing is taken away). */
  const messagesOf = async (ids: string[]) =>
    (
      await t.db.query(
        `SELECT count(*)::int AS n FROM outbox WHERE exchange = 'work' AND correlation_id = ANY($1::text[])`,
        [ids],
      )
    )[0].n as number;

  /** Claims every id from `claimers` workers at once, each claim a statement of its own. */
  async function claimAll(ids: string[], claimers: number) {
    const calls = ids.flatMap((id) =>
      Array.from({ length: claimers }, (_, w) => sm.claim(id, `w${w}`, LEASE).then((r) => ({ id, r }))),
    );
    return Promise.all(calls);
  }

  it('holds a limit of 2 among 10 tasks claimed by 8 concurrent claimers, parked with the reason and no message', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 2 });
    const tasks = await submit(who, 10);
    const ids = tasks.map((x) => x.id);
    const outboxBefore = await messagesOf(ids);
    expect(outboxBefore).toBe(10);

    const results = await claimAll(ids, 8);
    expect(results.filter((x) => x.r.applied)).toHaveLength(2);
    expect(await running(who)).toBe(2);
    const held = await heldIds(who);
    expect(held).toHaveLength(8);
    const one = (await sm.find(held[0]))!;
    expect(one.status).toBe('queued');
    expect(one.heldReason).toBe(`owner ${who} is at maxRunning 2`);
    expect(one.attempt).toBe(0); // a hold spends no attempt
    // Parked: no message was written for them (the 10 are the submit's own).
    expect(await messagesOf(ids)).toBe(outboxBefore);
    await expect(limits.get(who)).resolves.toMatchObject({ maxRunning: 2, running: 2, queued: 10, held: 8 });
  });

  it('never runs more than maxRunning while claimers race finishes, and wakes every held task until all finished', async () => {
    const who = nextOwner();
    const other = nextOwner();
    await limits.set(who, { maxRunning: 2 });
    const tasks = [...(await submit(who, 12)), ...(await submit(other, 12))];
    // The broker, played by the test: workers take work messages from the outbox (each once), claim,
    // run a few ms and succeed. Held tasks finish only if a freed slot wakes them (writes a message).
    let maxSeen = 0;
    let maxOther = 0;
    let claims = 0;
    let stop = false;
    const poller = (async () => {
      while (!stop) {
        maxSeen = Math.max(maxSeen, await running(who));
        maxOther = Math.max(maxOther, await running(other));
      }
    })();
    const mine = tasks.map((x) => x.id);
    const worker = async (name: string) => {
      while (!stop) {
        const rows: { correlation_id: string }[] = await t.db.query(
          `WITH taken AS (
             DELETE FROM outbox WHERE id = (
               SELECT id FROM outbox WHERE exchange = 'work' AND correlation_id = ANY($1::text[])
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING correlation_id)
           SELECT correlation_id FROM taken`,
          [mine],
        );
        if (rows.length === 0) {
          await sleep(5);
          continue;
        }
        claims++;
        const r = await sm.claim(rows[0].correlation_id, name, LEASE);
        if (!r.applied) continue;
        await sleep(5 + Math.random() * 20);
        await sm.succeed(r.task!.id, r.task!.attempt, { ok: true }, name);
      }
    };
    const workers = Array.from({ length: 8 }, (_, i) => worker(`w${i}`));
    try {
      await waitFor(
        'all 24 tasks succeeded',
        async () => {
          const rows = await t.db.query(
            `SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`,
            [tasks.map((x) => x.id)],
          );
          return rows[0].n === tasks.length;
        },
        60_000,
      );
    } finally {
      stop = true;
      await Promise.all([poller, ...workers]);
    }
    expect(maxSeen).toBe(2);
    expect(maxOther).toBeGreaterThan(2); // the other owner is not limited
    // Each hold costs one delivery and each wake one message: no redelivery loop.
    expect(claims).toBeLessThanOrEqual(tasks.length * 2);
    expect(await heldIds(who)).toEqual([]);
  });

  it('wakes the next held task (priority first) from every statement that frees a slot: succeed, retry, fail, cancel, abandon, release', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 1 });
    const [first] = await submit(who, 1);
    const low = await submit(who, 6, 0);
    const [high] = await submit(who, 1, 9);
    const claimed = await sm.claim(first.id, 'w1', LEASE);
    expect(claimed.applied).toBe(true);
    for (const x of [...low, high]) expect((await sm.claim(x.id, 'w1', LEASE)).applied).toBe(false);
    expect(await heldIds(who)).toHaveLength(7);

    const frees: Record<string, (x: Task) => Promise<unknown>> = {
      succeed: (x) => sm.succeed(x.id, x.attempt, 1, 'w1'),
      failRetryable: (x) => sm.failRetryable(x.id, x.attempt, err, 0, 'w1'),
      failFinal: (x) => sm.failFinal(x.id, x.attempt, err, 'w1'),
      cancel: (x) => sm.cancel(x.id, 'owner:x'),
      failAbandoned: async (x) => {
        await t.db.query(
          `UPDATE tasks SET lease_expires_at = now() - interval '1 second', max_attempts = attempt - attempt_base WHERE id = $1`,
          [x.id],
        );
        return sm.failAbandoned(x.id, err, 'sweeper');
      },
      // Last: the released task itself comes back (its delivery handed back) and takes room before any held one.
      release: (x) => sm.release(x.id, x.attempt, 'w1'),
    };
    let current = claimed.task!;
    const wokenOrder: string[] = [];
    for (const [name, free] of Object.entries(frees)) {
      const heldBefore = await heldIds(who);
      await free(current);
      const heldAfter = await heldIds(who);
      const woken = heldBefore.filter((id) => !heldAfter.includes(id));
      expect([name, woken.length]).toEqual([name, 1]);
      expect([name, await messagesOf(woken)]).toEqual([name, 2]); // its submit's message, then the wake's
      wokenOrder.push(woken[0]);
      const next = await sm.claim(woken[0], 'w1', LEASE);
      expect([name, next.applied]).toEqual([name, true]);
      current = next.task!;
    }
    expect(wokenOrder[0]).toBe(high.id);
  });

  it('a freed slot wakes the oldest held task even while newer submits wait for a claim: held ones do not starve', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 1 });
    const [a, b] = await submit(who, 2);
    expect((await sm.claim(a.id, 'w0', LEASE)).applied).toBe(true);
    expect((await sm.claim(b.id, 'w0', LEASE)).applied).toBe(false);
    const [c] = await submit(who, 1, 0);
    expect((await sm.claim(c.id, 'w0', LEASE)).applied).toBe(false);
    expect(await heldIds(who)).toEqual([b.id, c.id].sort());
    // A steady stream: a new task, its message on the way, is there when the slot frees.
    await submit(who, 1);
    const run = (await sm.find(a.id))!;
    await sm.succeed(a.id, run.attempt, 1, 'w0');
    expect(await heldIds(who)).toEqual([c.id]);
    expect(await messagesOf([b.id])).toBe(2);
    // Woken but not claimed yet, b takes the room: the safety net wakes nobody else.
    expect(await sm.wakeStrandedHeld(100)).toEqual([]);
    expect(await heldIds(who)).toEqual([c.id]);
  });

  it('a cancelled held task is gone from the held ones and wakes nobody; a held task stays out of the lost-message sweeps', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 1 });
    const [a, b, c] = await submit(who, 3);
    await claimAll([a.id, b.id, c.id], 1);
    const held = await heldIds(who);
    expect(held).toHaveLength(2);
    await t.db.query(`UPDATE tasks SET updated_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])`, [held]);
    expect(await sm.findIdleQueued(['demo.sleep'], 1000, 1000)).not.toEqual(expect.arrayContaining([held[0]]));
    expect(await sm.requeueLostQueued(held, 1000)).toEqual([]);

    const r = await sm.cancel(held[0], 'owner:x');
    expect(r.applied).toBe(true);
    expect(r.task!.heldSince).toBeNull();
    expect(await heldIds(who)).toEqual([held[1]]);
    expect(await messagesOf([held[1]])).toBe(1);
    await expect(limits.get(who)).resolves.toMatchObject({ running: 1, queued: 2, held: 1 });
  });

  it('raising the limit wakes held tasks up to the new room at once; removing it wakes them all', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 2 });
    const tasks = await submit(who, 10);
    await claimAll(
      tasks.map((x) => x.id),
      2,
    );
    expect(await heldIds(who)).toHaveLength(8);
    const raised = await limits.set(who, { maxRunning: 5 });
    expect(raised.woken).toBe(3);
    expect(raised.limits).toMatchObject({ maxRunning: 5, running: 2, held: 5 });
    // A second raise right after counts the woken-but-unclaimed ones as taking room: no over-wake.
    expect((await limits.set(who, { maxRunning: 5 })).woken).toBe(0);
    const removed = await limits.set(who, { maxRunning: null });
    expect(removed.woken).toBe(5);
    expect(removed.limits).toMatchObject({ maxRunning: null, maxQueued: null, held: 0, updatedAt: null });
    expect((await t.db.query(`SELECT count(*)::int AS n FROM owner_limits WHERE owner = $1`, [who]))[0].n).toBe(0);
  });

  it('the sweeper’s safety net wakes a held task whose owner has room, and nothing while the owner is full', async () => {
    const who = nextOwner();
    await limits.set(who, { maxRunning: 1 });
    const [a, b] = await submit(who, 2);
    await claimAll([a.id, b.id], 1);
    await t.db.query(`UPDATE tasks SET updated_at = now() - interval '1 hour' WHERE owner = $1`, [who]);
    expect(await heldIds(who)).toHaveLength(1);
    expect(await sm.wakeStrandedHeld(100)).toEqual([]);
    // The wake-up lost (the run ended without its wake, e.g. a row changed by hand): the owner has room.
    const runningOne = (await t.db.query(`SELECT id FROM tasks WHERE owner = $1 AND status = 'running'`, [who]))[0];
    await t.db.query(
      `UPDATE tasks SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`,
      [runningOne.id],
    );
    const woken = await sm.wakeStrandedHeld(100);
    expect(woken).toHaveLength(1);
    expect(await heldIds(who)).toEqual([]);
  });

  it('a finish of an owner without limits notifies no relay (its wake-up insert is empty); a submit does', async () => {
    const who = nextOwner();
    const [x] = await submit(who, 1);
    const claimed = await sm.claim(x.id, 'w0', LEASE);
    const listener = new Client({ connectionString: t.config.DATABASE_URL });
    await listener.connect();
    try {
      const channel = `${t.config.DATABASE_SCHEMA}.outbox`;
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(n.payload || 'outbox'));
      await listener.query(`LISTEN "${channel}"`);
      const marker = async (name: string) => {
        await t.db.query(`SELECT pg_notify($1, $2)`, [channel, name]);
        await waitFor(`the ${name} marker`, () => heard.includes(name), 10_000, 20);
      };
      await sm.succeed(x.id, claimed.task!.attempt, 1, 'w0');
      // Notifications arrive in commit order: once the marker is here, the finish's would have been too.
      await marker('after-finish');
      await submit(who, 1);
      await marker('after-submit');
      expect(heard).toEqual(['after-finish', 'outbox', 'after-submit']);
    } finally {
      await listener.end();
    }
  });

  it('owners without limits are never held', async () => {
    const who = nextOwner();
    const tasks = await submit(who, 20);
    const results = await claimAll(
      tasks.map((x) => x.id),
      1,
    );
    expect(results.every((x) => x.r.applied)).toBe(true);
  });

  describe('maxQueued at submit', () => {
    it('lets exactly the room through among 20 concurrent single submits; the rest are refused naming maxQueued', async () => {
      const who = nextOwner();
      await limits.set(who, { maxQueued: 5 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, () => batch.createOne({ ...base, owner: who, start: true }, { actor: 'x' })),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(refused).toHaveLength(15);
      for (const o of refused) {
        expect(o.reason).toBeInstanceOf(OwnerQueueFullError);
        expect((o.reason as Error).message).toMatch(/maxQueued 5/);
      }
      await expect(limits.get(who)).resolves.toMatchObject({ queued: 5 });
    });

    it('a batch that would cross the limit writes nothing; one that fits is written whole', async () => {
      const who = nextOwner();
      await limits.set(who, { maxQueued: 10 });
      await submit(who, 6);
      const counts = async () =>
        (
          await t.db.query(
            `SELECT (SELECT count(*) FROM tasks WHERE owner = $1)::int AS tasks,
                    (SELECT count(*) FROM task_events e JOIN tasks x ON x.id = e.task_id WHERE x.owner = $1)::int AS events`,
            [who],
          )
        )[0];
      const before = await counts();
      await expect(submit(who, 5)).rejects.toThrow(/6 non-terminal tasks: 5 more would pass its maxQueued 10/);
      expect(await counts()).toEqual(before);
      await expect(submit(who, 4)).resolves.toHaveLength(4);
      // Finished tasks do not count: one succeeds, one more fits.
      const [x] = await t.db.query(`SELECT id FROM tasks WHERE owner = $1 LIMIT 1`, [who]);
      const c = await sm.claim(x.id, 'w1', LEASE);
      await sm.succeed(x.id, c.task!.attempt, 1, 'w1');
      await expect(submit(who, 2)).rejects.toBeInstanceOf(OwnerQueueFullError);
      await expect(submit(who, 1)).resolves.toHaveLength(1);
    });

    it('with an idempotency key: a repeat is answered with its task at the limit; a new key is refused', async () => {
      const who = nextOwner();
      await limits.set(who, { maxQueued: 1 });
      const create = (key: string) =>
        sm.create({ ...base, owner: who, idempotencyKey: key }, { start: true, actor: 'x' });
      const first = await create('k1');
      expect(first.created).toBe(true);
      await expect(create('k1')).resolves.toMatchObject({ created: false, task: { id: first.task.id } });
      await expect(create('k2')).rejects.toThrow(`owner ${who} is at its maxQueued 1 (1 non-terminal tasks)`);
      expect((await t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE owner = $1`, [who]))[0].n).toBe(1);
    });
  });
});
