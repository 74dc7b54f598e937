import { createTestDatabase, OUTBOX_WORK_TASKS, type TestDatabase } from '../testing';
import type { Task } from './entities';
import { NEXT_DUE_SQL, PROMOTE_DUE_SQL, TaskStateMachine } from './task-state-machine';
import { TASK_STATUSES, type TaskStatus } from './task-status';

const LEASE = 30_000;
const err = { code: 'TEST.FAILED', message: 'boom' };

describe('TaskStateMachine (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
  });
  afterAll(() => t.drop());

  async function newTask(
    start = false,
    extra: Partial<{ maxAttempts: number; delayMs: number; runAt: Date; type: string }> = {},
  ): Promise<Task> {
    const { task } = await sm.create(
      {
        owner: 'alice',
        type: extra.type ?? 'demo.sleep',
        payload: { ms: 1 },
        maxAttempts: extra.maxAttempts ?? 3,
        timeoutMs: 60_000,
        delayMs: extra.delayMs,
        runAt: extra.runAt,
      },
      { start, actor: 'owner:alice' },
    );
    return task;
  }

  /** Puts a task into `status` the way the product would get there. */
  async function taskIn(status: TaskStatus): Promise<{ task: Task; token: number }> {
    if (status === 'scheduled') return { task: await newTask(true, { delayMs: 3_600_000 }), token: 0 };
    const task = await newTask(status !== 'new');
    if (status === 'new' || status === 'queued') return { task, token: 0 };
    const claimed = await sm.claim(task.id, 'w1', LEASE);
    const token = claimed.task!.attempt;
    if (status === 'running') return { task: claimed.task!, token };
    const to = {
      retrying: () => sm.failRetryable(task.id, token, err, 0, 'w1'),
      succeeded: () => sm.succeed(task.id, token, { ok: true }, 'w1'),
      failed: () => sm.failFinal(task.id, token, err, 'w1'),
      cancelled: () => sm.cancel(task.id, 'owner:alice'),
    }[status]!;
    const r = await to();
    expect(r.applied).toBe(true);
    return { task: r.task!, token };
  }

  async function events(id: string) {
    return t.db.query(`SELECT from_status, to_status, attempt, actor FROM task_events WHERE task_id = $1 ORDER BY id`, [
      id,
    ]);
  }
  async function outboxFor(id: string) {
    // A bundle's row names its tasks in its body (its correlation id is the first one's).
    return t.db.query(
      `SELECT exchange, routing_key, body FROM outbox WHERE correlation_id = $1 OR body -> 'taskIds' ? $1 ORDER BY id`,
      [id],
    );
  }

  type Attempt = (task: Task, token: number) => Promise<{ applied: boolean; task: Task | null }>;
  const transitions: Record<string, { from: TaskStatus[]; to: TaskStatus; run: Attempt }> = {
    start: { from: ['new'], to: 'queued', run: (x) => sm.start(x.id, 'owner:alice') },
    claim: { from: ['queued', 'retrying'], to: 'running', run: (x) => sm.claim(x.id, 'w2', LEASE) },
    succeed: { from: ['running'], to: 'succeeded', run: (x, k) => sm.succeed(x.id, k, 1, 'w1') },
    failRetryable: { from: ['running'], to: 'retrying', run: (x, k) => sm.failRetryable(x.id, k, err, 0, 'w1') },
    failFinal: { from: ['running'], to: 'failed', run: (x, k) => sm.failFinal(x.id, k, err, 'w1') },
    cancel: {
      from: ['new', 'scheduled', 'queued', 'retrying', 'running'],
      to: 'cancelled',
      run: (x) => sm.cancel(x.id, 'owner:alice'),
    },
    release: { from: ['running'], to: 'queued', run: (x, k) => sm.release(x.id, k, 'w1') },
    retry: { from: ['failed', 'cancelled'], to: 'queued', run: (x) => sm.retry(x.id, 'owner:alice') },
    // The promoter's statement, once the task is due (its due time moved to the past by hand).
    promote: {
      from: ['scheduled'],
      to: 'queued',
      run: async (x) => {
        await t.db.query(`UPDATE tasks SET run_at = now() - interval '1 second' WHERE id = $1`, [x.id]);
        const r = await sm.promoteDue([x.type], 100, 'w1');
        return { applied: r.promoted.some((p) => p.id === x.id), task: await sm.find(x.id) };
      },
    },
  };

  for (const [name, spec] of Object.entries(transitions)) {
    for (const from of TASK_STATUSES) {
      const allowed = spec.from.includes(from);
      it(`${name} from ${from} is ${allowed ? `applied (-> ${spec.to}) with one event` : 'refused and changes nothing'}`, async () => {
        const { task, token } = await taskIn(from);
        const before = await events(task.id);
        const r = await spec.run(task, token);
        expect(r.applied).toBe(allowed);
        const after = await events(task.id);
        if (allowed) {
          expect(r.task!.status).toBe(spec.to);
          expect(after).toHaveLength(before.length + 1);
          expect(after.at(-1)).toMatchObject({ from_status: from, to_status: spec.to });
        } else {
          expect(r.task!.status).toBe(from);
          expect(r.task!.updatedAt).toEqual(task.updatedAt);
          expect(after).toEqual(before);
        }
      });
    }
  }

  it('reports a missing task as not applied with no row', async () => {
    await expect(sm.cancel('00000000-0000-4000-8000-000000000000', 'x')).resolves.toEqual({
      applied: false,
      task: null,
    });
  });

  it('lets exactly one of 20 concurrent claimers win', async () => {
    const task = await newTask(true);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sm.claim(task.id, `w${i}`, LEASE)));
    const winners = results.filter((r) => r.applied);
    expect(winners).toHaveLength(1);
    expect(winners[0].task!.attempt).toBe(1);
    // Losers see the row as it is after the winner, not a stale snapshot.
    for (const r of results.filter((x) => !x.applied)) expect(r.task!.status).toBe('running');
    expect((await events(task.id)).filter((e: { to_status: string }) => e.to_status === 'running')).toHaveLength(1);
  });

  it('records one outcome and one event for 20 concurrent succeeds with the same token', async () => {
    const { task, token } = await taskIn('running');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sm.succeed(task.id, token, { i }, 'w1')));
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    const evs = await events(task.id);
    expect(evs.filter((e: { to_status: string }) => e.to_status === 'succeeded')).toHaveLength(1);
  });

  it('fences a zombie: after takeover, the old run can neither heartbeat, report progress, succeed nor fail', async () => {
    const task = await newTask(true);
    const a = await sm.claim(task.id, 'worker-a', 50);
    const tokenA = a.task!.attempt;
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [task.id]);
    const b = await sm.claim(task.id, 'worker-b', LEASE);
    expect(b.applied).toBe(true);
    expect(b.task!.attempt).toBe(tokenA + 1);

    await expect(sm.heartbeat(task.id, tokenA, 'worker-a', LEASE)).resolves.toBe(false);
    await expect(sm.progress(task.id, tokenA, 'worker-a', 50, 'zombie', LEASE)).resolves.toBe(false);
    expect((await sm.succeed(task.id, tokenA, 'zombie', 'worker-a')).applied).toBe(false);
    expect((await sm.failFinal(task.id, tokenA, err, 'worker-a')).applied).toBe(false);
    expect((await sm.failRetryable(task.id, tokenA, err, 0, 'worker-a')).applied).toBe(false);
    expect((await sm.release(task.id, tokenA, 'worker-a')).applied).toBe(false);

    const [row] = await t.db.query(`SELECT status, lease_owner, result, progress_message FROM tasks WHERE id = $1`, [
      task.id,
    ]);
    expect(row).toEqual({ status: 'running', lease_owner: 'worker-b', result: null, progress_message: null });
    await expect(sm.heartbeat(task.id, b.task!.attempt, 'worker-b', LEASE)).resolves.toBe(true);
    expect((await sm.succeed(task.id, b.task!.attempt, 'ok', 'worker-b')).applied).toBe(true);
  });

  it('does not take over a running task whose lease is still live', async () => {
    const { task } = await taskIn('running');
    const r = await sm.claim(task.id, 'other', LEASE);
    expect(r.applied).toBe(false);
    expect(r.task!.leaseOwner).toBe('w1');
  });

  it('fails a task that crashed its workers maxAttempts times instead of claiming it again', async () => {
    const task = await newTask(true, { maxAttempts: 2 });
    for (let i = 0; i < 2; i++) {
      expect((await sm.claim(task.id, `w${i}`, LEASE)).applied).toBe(true);
      await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [task.id]);
    }
    expect((await sm.claim(task.id, 'w9', LEASE)).applied).toBe(false);
    const r = await sm.failAbandoned(
      task.id,
      { code: 'TASK.ABANDONED', message: 'lease expired on every attempt' },
      'system:worker',
    );
    expect(r.applied).toBe(true);
    expect(r.task!.status).toBe('failed');
  });

  it('refuses failRetryable when no attempts are left', async () => {
    const task = await newTask(true, { maxAttempts: 1 });
    const c = await sm.claim(task.id, 'w1', LEASE);
    expect((await sm.failRetryable(task.id, c.task!.attempt, err, 0, 'w1')).applied).toBe(false);
  });

  it('gives a manual retry a fresh attempt budget and keeps the fencing token increasing', async () => {
    const task = await newTask(true, { maxAttempts: 1 });
    const c = await sm.claim(task.id, 'w1', LEASE);
    await sm.failFinal(task.id, c.task!.attempt, err, 'w1');
    const r = await sm.retry(task.id, 'owner:alice');
    expect(r.task).toMatchObject({ status: 'queued', error: null, attempt: 1, attemptBase: 1 });
    const c2 = await sm.claim(task.id, 'w2', LEASE);
    expect(c2.task!.attempt).toBe(2);
    // The old run's token is dead for good.
    expect((await sm.succeed(task.id, 1, 'stale', 'w1')).applied).toBe(false);
  });

  it('does not count a graceful release against maxAttempts', async () => {
    const task = await newTask(true, { maxAttempts: 1 });
    const c = await sm.claim(task.id, 'w1', LEASE);
    await sm.release(task.id, c.task!.attempt, 'w1');
    const c2 = await sm.claim(task.id, 'w2', LEASE);
    expect(c2.applied).toBe(true);
    expect((await sm.failRetryable(task.id, c2.task!.attempt, err, 0, 'w2')).applied).toBe(false);
  });

  it('ends a cancel racing a succeed in exactly one terminal state that the event log agrees with', async () => {
    for (let i = 0; i < 20; i++) {
      const { task, token } = await taskIn('running');
      const [s, c] = await Promise.all([sm.succeed(task.id, token, 'done', 'w1'), sm.cancel(task.id, 'owner:alice')]);
      expect([s.applied, c.applied].filter(Boolean)).toHaveLength(1);
      const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]);
      const terminal = (await events(task.id)).filter((e: { to_status: string }) =>
        ['succeeded', 'cancelled', 'failed'].includes(e.to_status),
      );
      expect(terminal).toHaveLength(1);
      expect(terminal[0].to_status).toBe(row.status);
    }
  });

  it('writes exactly one work message to the outbox on start, and none when the start is repeated', async () => {
    const task = await newTask(false);
    expect(await outboxFor(task.id)).toHaveLength(0);
    await sm.start(task.id, 'owner:alice');
    await sm.start(task.id, 'owner:alice');
    const rows = await outboxFor(task.id);
    expect(rows).toEqual([
      { exchange: 'work', routing_key: 'demo.sleep', body: { v: 1, taskId: task.id, type: 'demo.sleep' } },
    ]);
  });

  it('writes neither the status change nor the outbox row when the surrounding transaction fails', async () => {
    const task = await newTask(false);
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`UPDATE tasks SET status = 'queued' WHERE id = $1`, [task.id]);
        await tx.query(
          `INSERT INTO outbox (exchange, routing_key, correlation_id, body) VALUES ('work', 'x', $1, '{}')`,
          [task.id],
        );
        throw new Error('crash before commit');
      }),
    ).rejects.toThrow('crash before commit');
    // And the real statement is atomic by itself: a failing event insert undoes the update and the outbox row.
    await t.db.query(`ALTER TABLE task_events ADD CONSTRAINT no_queued CHECK (to_status <> 'queued') NOT VALID`);
    try {
      await expect(sm.start(task.id, 'owner:alice')).rejects.toThrow(/no_queued/);
    } finally {
      await t.db.query(`ALTER TABLE task_events DROP CONSTRAINT no_queued`);
    }
    const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]);
    expect(row.status).toBe('new');
    expect(await outboxFor(task.id)).toHaveLength(0);
  });

  it('signals a cancel on the control exchange only when the task was running', async () => {
    const queued = await newTask(true);
    await sm.cancel(queued.id, 'owner:alice');
    expect((await outboxFor(queued.id)).map((r: { exchange: string }) => r.exchange)).toEqual(['work']);
    const { task } = await taskIn('running');
    await sm.cancel(task.id, 'owner:alice');
    expect((await outboxFor(task.id)).map((r: { exchange: string }) => r.exchange)).toEqual(['work', 'control']);
  });

  it('creates one task for 20 concurrent creates with the same idempotency key', async () => {
    const input = {
      owner: 'bob',
      type: 'demo.sleep',
      payload: { ms: 5 },
      maxAttempts: 3,
      timeoutMs: 1000,
      idempotencyKey: 'k-1',
      requestHash: 'h',
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => sm.create(input, { start: true, actor: 'owner:bob' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
    expect(await outboxFor(results[0].task.id)).toHaveLength(1);
  });

  it('claims a batch in one statement: each row decided on its own state, one event per claimed task', async () => {
    const queued = await Promise.all(Array.from({ length: 30 }, () => newTask(true)));
    const { task: done } = await taskIn('succeeded');
    const { task: elsewhere } = await taskIn('running');
    const ids = [...queued.map((x) => x.id), done.id, elsewhere.id, '00000000-0000-4000-8000-0000000000ff'];
    const results = await sm.claimMany(ids, 'batcher', LEASE);
    expect(queued.every((x) => results.get(x.id)?.applied && results.get(x.id)?.task?.attempt === 1)).toBe(true);
    expect(results.get(done.id)).toMatchObject({ applied: false, task: { status: 'succeeded' } });
    expect(results.get(elsewhere.id)).toMatchObject({ applied: false, task: { leaseOwner: 'w1' } });
    expect(results.has('00000000-0000-4000-8000-0000000000ff')).toBe(false);
    const [{ n }] = await t.db.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running' AND actor = 'batcher'`,
      [ids.slice(0, 30)],
    );
    expect(n).toBe(30);
  });

  it('succeeds a batch fenced per run: stale tokens and foreign leases change nothing', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () => taskIn('running')));
    const results = await sm.succeedMany(
      runs.map(({ task, token }, i) => ({ id: task.id, token: i % 2 === 0 ? token : token + 7, result: { i } })),
      'w1',
    );
    runs.forEach(({ task }, i) => {
      expect(results.get(task.id)?.applied).toBe(i % 2 === 0);
      expect(results.get(task.id)?.task?.status).toBe(i % 2 === 0 ? 'succeeded' : 'running');
    });
    expect(
      (await sm.succeedMany([{ id: runs[1].task.id, token: runs[1].token, result: 1 }], 'someone-else')).get(
        runs[1].task.id,
      )?.applied,
    ).toBe(false);
  });

  it('heartbeats a batch and reports only the runs still owned', async () => {
    const a = await taskIn('running');
    const b = await taskIn('running');
    await sm.cancel(b.task.id, 'owner:alice');
    const owned = await sm.heartbeatMany(
      [
        { id: a.task.id, token: a.token },
        { id: b.task.id, token: b.token },
      ],
      'w1',
      LEASE,
    );
    expect([...owned]).toEqual([a.task.id]);
  });

  it('fences heartbeats by attempt too: the same worker, after taking over its own expired lease, cannot extend it with the old token', async () => {
    const task = await newTask(true);
    const first = (await sm.claim(task.id, 'w1', 1)).task!.attempt;
    await new Promise((r) => setTimeout(r, 5)); // the 1-ms lease is over
    const second = await sm.claim(task.id, 'w1', LEASE);
    expect(second.applied).toBe(true);
    const other = await taskIn('running'); // w1 too, its attempt equal to the stale token
    const owned = await sm.heartbeatMany(
      [
        { id: task.id, token: first },
        { id: other.task.id, token: other.token },
      ],
      'w1',
      LEASE,
    );
    expect(other.token).toBe(first);
    expect([...owned]).toEqual([other.task.id]);
    expect([...(await sm.heartbeatMany([{ id: task.id, token: second.task!.attempt }], 'w1', LEASE))]).toEqual([
      task.id,
    ]);
  });

  it('re-enqueues only tasks still in the given states', async () => {
    const queued = await newTask(true);
    const { task: done } = await taskIn('succeeded');
    const ids = await sm.enqueueAgain([queued.id, done.id], ['queued']);
    expect(ids).toEqual([queued.id]);
    expect(await outboxFor(queued.id)).toHaveLength(2);
  });

  it('does not let a claim skip a retry backoff: a retrying task is claimed only once it is due', async () => {
    const { task, token } = await taskIn('running');
    expect((await sm.failRetryable(task.id, token, err, 60_000, 'w1')).applied).toBe(true);
    const early = await sm.claim(task.id, 'w2', LEASE);
    expect(early.applied).toBe(false);
    expect(early.task).toMatchObject({ status: 'retrying', attempt: token });
    // The due time comes from the database clock, about a minute ahead.
    const [{ s }] = await t.db.query(
      `SELECT extract(epoch FROM run_after - now())::float8 AS s FROM tasks WHERE id = $1`,
      [task.id],
    );
    expect(s).toBeGreaterThan(55);
    await t.db.query(`UPDATE tasks SET run_after = now() - interval '1 second' WHERE id = $1`, [task.id]);
    expect((await sm.claim(task.id, 'w2', LEASE)).applied).toBe(true);
  });

  it('names the attempt it cancels in the cancel signal', async () => {
    const { task, token } = await taskIn('running');
    await sm.cancel(task.id, 'owner:alice');
    const [signal] = await t.db.query(`SELECT body FROM outbox WHERE correlation_id = $1 AND exchange = 'control'`, [
      task.id,
    ]);
    expect(signal.body).toEqual({ v: 1, kind: 'cancel', taskId: task.id, attempt: token });
  });

  it('sweeps a stranded retry without moving its due time', async () => {
    const { task, token } = await taskIn('running');
    await sm.failRetryable(task.id, token, err, 0, 'w1');
    await t.db.query(
      `UPDATE tasks SET run_after = now() - interval '1 hour', updated_at = now() - interval '1 hour' WHERE id = $1`,
      [task.id],
    );
    const [before] = await t.db.query(`SELECT run_after FROM tasks WHERE id = $1`, [task.id]);
    // Only the types asked for: a worker sweeps the types it serves.
    expect(await sm.requeueStranded(60_000, 10_000, ['other.type'])).not.toContain(task.id);
    expect(await sm.requeueStranded(60_000, 10_000, ['demo.sleep'])).toContain(task.id);
    const [after] = await t.db.query(`SELECT run_after FROM tasks WHERE id = $1`, [task.id]);
    expect(after.run_after).toEqual(before.run_after);
    // Touched: the next sweep leaves it alone for the grace period.
    expect(await sm.requeueStranded(60_000, 10_000, ['demo.sleep'])).not.toContain(task.id);
    expect((await sm.claim(task.id, 'w2', LEASE)).applied).toBe(true);
  });

  it('finds queued tasks idle past the grace period whose messages were all sent, and re-enqueues each once', async () => {
    await t.db.query(`DELETE FROM outbox`); // as if the relay had sent what earlier tests queued
    const idle = await newTask(true);
    const fresh = await newTask(true);
    const unsent = await newTask(true);
    // The relay sent idle's message long ago (its outbox row is gone); unsent's row is still waiting.
    await t.db.query(`DELETE FROM outbox WHERE correlation_id = ANY($1::text[])`, [[idle.id, fresh.id]]);
    // One statement, one now(): a task's outbox row is written with its change, at the same time.
    await t.db.query(
      `WITH a AS (UPDATE tasks SET updated_at = now() - interval '10 minutes' WHERE id = ANY($1::uuid[]))
       UPDATE outbox SET created_at = now() - interval '10 minutes' WHERE correlation_id = $2`,
      [[idle.id, unsent.id], unsent.id],
    );
    const other = await sm.create(
      { owner: 'alice', type: 'other.type', payload: {}, maxAttempts: 1, timeoutMs: 1000 },
      { start: true, actor: 'owner:alice' },
    );
    await t.db.query(`UPDATE tasks SET updated_at = now() - interval '10 minutes' WHERE id = $1`, [other.task.id]);

    // An unsent outbox row older than idle's last change: its message may still be on its way.
    await t.db.query(`UPDATE tasks SET updated_at = now() - interval '5 minutes' WHERE id = $1`, [idle.id]);
    expect(await sm.findIdleQueued(['demo.sleep'], 60_000, 1000)).toEqual([]);
    await t.db.query(`DELETE FROM outbox WHERE correlation_id = $1`, [unsent.id]);

    const found = await sm.findIdleQueued(['demo.sleep'], 60_000, 1000);
    expect(found).toContain(idle.id);
    expect(found).toContain(unsent.id);
    expect(found).not.toContain(fresh.id); // within the grace period
    expect(found).not.toContain(other.task.id); // a type not asked for
    // Two sweepers racing: the row lock and the recheck let one of them through.
    const [a, b] = await Promise.all([
      sm.requeueLostQueued([idle.id], 60_000),
      sm.requeueLostQueued([idle.id], 60_000),
    ]);
    expect([...a, ...b]).toEqual([idle.id]);
    expect(await outboxFor(idle.id)).toHaveLength(1);
    expect(await sm.findIdleQueued(['demo.sleep'], 60_000, 1000)).not.toContain(idle.id);
    await t.db.query(`DELETE FROM tasks WHERE id = ANY($1::uuid[])`, [[idle.id, unsent.id, fresh.id, other.task.id]]);
  });

  it('keeps working after a migration changes the table under its prepared statements (cached plan must not change result type)', async () => {
    await Promise.all(Array.from({ length: 5 }, () => taskIn('running'))); // statements prepared on several pooled connections
    await t.db.query(`ALTER TABLE tasks ADD COLUMN added_later int`);
    try {
      const { task, token } = await taskIn('running');
      expect((await sm.succeed(task.id, token, { ok: true }, 'w1')).task?.status).toBe('succeeded');
    } finally {
      await t.db.query(`ALTER TABLE tasks DROP COLUMN added_later`);
    }
  });
  describe('scheduled tasks (delayed start)', () => {
    /** A task type of its own per test, so promotions see only that test's tasks. */
    let n = 0;
    const ownType = () => `demo.scheduled-${++n}`;

    it('creates a task due later as scheduled with its due time and no message; one due now or in the past as queued', async () => {
      const later = await newTask(true, { delayMs: 60_000 });
      expect(later.status).toBe('scheduled');
      expect(later.runAt!.getTime() - later.createdAt.getTime()).toBe(60_000);
      expect(await outboxFor(later.id)).toHaveLength(0);
      const past = await newTask(true, { runAt: new Date(Date.now() - 60_000) });
      expect(past.status).toBe('queued');
      expect(await outboxFor(past.id)).toHaveLength(1);
      const zero = await newTask(true, { delayMs: 0 });
      expect(zero.status).toBe('queued');
      const notStarted = await newTask(false, { delayMs: 60_000 });
      expect(notStarted.status).toBe('new');
      expect(await events(later.id)).toEqual([
        { from_status: null, to_status: 'scheduled', attempt: 0, actor: 'owner:alice' },
      ]);
    });

    it('creates a batch with each item scheduled or queued by its own due time', async () => {
      const base = { owner: 'alice', type: 'demo.sleep', payload: {}, maxAttempts: 1, timeoutMs: 1000, start: true };
      const ids = ['a', 'b', 'c'].map((c) => `00000000-0000-4000-8000-00000000000${c}`);
      const created = await sm.createMany([
        { ...base, id: ids[0], actor: 'a', delayMs: 60_000 },
        { ...base, id: ids[1], actor: 'a', runAt: new Date(Date.now() - 1000) },
        { ...base, id: ids[2], actor: 'a', runAt: new Date(Date.now() + 3_600_000) },
      ]);
      expect(ids.map((id) => (created.get(id) as Task).status)).toEqual(['scheduled', 'queued', 'scheduled']);
      expect((created.get(ids[2]) as Task).runAt!.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
      expect(await outboxFor(ids[0])).toHaveLength(0);
      expect(await outboxFor(ids[1])).toHaveLength(1);
    });

    it('starts a new task due later into scheduled, without a message, and a repeated start changes nothing', async () => {
      const task = await newTask(false, { delayMs: 60_000 });
      const r = await sm.start(task.id, 'owner:alice');
      expect(r).toMatchObject({ applied: true, task: { status: 'scheduled' } });
      expect(await outboxFor(task.id)).toHaveLength(0);
      expect((await sm.start(task.id, 'owner:alice')).applied).toBe(false);
      expect((await events(task.id)).map((e: { to_status: string }) => e.to_status)).toEqual(['new', 'scheduled']);
    });

    it("keeps a scheduled task's traceparent (single and batch submits) for its promotion's work message", async () => {
      const type = ownType();
      const tp = (i: number) => `00-${String(i).padStart(32, '0')}-${'2'.repeat(16)}-01`;
      const input = { owner: 'alice', type, payload: {}, maxAttempts: 1, timeoutMs: 1000 };
      const single = await sm.create({ ...input, delayMs: 60_000 }, { start: true, actor: 'a', traceparent: tp(1) });
      const queued = await sm.create(input, { start: true, actor: 'a', traceparent: tp(2) });
      const ids = ['3', '4'].map((c) => `00000000-0000-4000-8000-00000000000${c}`);
      await sm.createMany([
        { ...input, id: ids[0], start: true, actor: 'a', delayMs: 60_000, traceparent: tp(3) },
        { ...input, id: ids[1], start: true, actor: 'a', delayMs: 60_000 },
      ]);
      const stored = async (id: string) =>
        (await t.db.query(`SELECT traceparent FROM tasks WHERE id = $1`, [id]))[0].traceparent;
      // Queued at once, the outbox row has it; the task row keeps it only while the message is still to be written.
      expect(await stored(queued.task.id)).toBeNull();
      expect(await stored(single.task.id)).toBe(tp(1));
      await t.db.query(`UPDATE tasks SET run_at = now() WHERE type = $1 AND status = 'scheduled'`, [type]);
      expect((await sm.promoteDue([type], 10, 'w1')).promoted).toHaveLength(3);
      const headers = async (id: string) =>
        (await t.db.query(`SELECT headers FROM outbox WHERE correlation_id = $1`, [id])).map(
          (r: { headers: unknown }) => r.headers,
        );
      expect(await headers(single.task.id)).toEqual([{ traceparent: tp(1) }]);
      expect(await headers(ids[0])).toEqual([{ traceparent: tp(3) }]);
      expect(await headers(ids[1])).toEqual([{}]);
    });

    it('promotes due tasks of the given types only, oldest due first, in batches, each with one message and one event', async () => {
      const type = ownType();
      const other = ownType();
      const tasks = [];
      for (let i = 0; i < 5; i++) tasks.push(await newTask(true, { type, delayMs: 60_000 }));
      const notDue = await newTask(true, { type, delayMs: 60_000 });
      const otherType = await newTask(true, { type: other, delayMs: 60_000 });
      // Due 5, 4, ... 1 seconds ago: the last created is the oldest due.
      for (const [i, task] of [...tasks, otherType].entries())
        await t.db.query(`UPDATE tasks SET run_at = now() - $2 * interval '1 second' WHERE id = $1`, [task.id, 5 - i]);
      const first = await sm.promoteDue([type], 3, 'w1');
      expect(first.promoted.map((x) => x.id)).toEqual(tasks.slice(0, 3).map((x) => x.id));
      expect(first.promoted.every((x) => x.status === 'queued')).toBe(true);
      const second = await sm.promoteDue([type], 3, 'w1');
      expect(second.promoted.map((x) => x.id)).toEqual(tasks.slice(3).map((x) => x.id));
      expect((await sm.promoteDue([type], 3, 'w1')).promoted).toEqual([]);
      // The next due is the one not due yet, about a minute away by the database's clock.
      expect(second.nextDueInMs).toBeGreaterThan(55_000);
      expect(second.nextDueInMs).toBeLessThanOrEqual(60_000);
      // Each round's tasks share one message: a bundle, in id order (UUIDv7 ids: the order they were made).
      for (const round of [tasks.slice(0, 3), tasks.slice(3)])
        for (const task of round)
          expect(await outboxFor(task.id)).toEqual([
            { exchange: 'work', routing_key: type, body: { v: 2, taskIds: round.map((x) => x.id).sort(), type } },
          ]);
      for (const task of tasks) {
        expect((await events(task.id)).at(-1)).toMatchObject({
          from_status: 'scheduled',
          to_status: 'queued',
          actor: 'w1',
        });
      }
      expect((await sm.find(notDue.id))!.status).toBe('scheduled');
      expect((await sm.find(otherType.id))!.status).toBe('scheduled');
      expect((await sm.promoteDue([ownType()], 3, 'w1')).nextDueInMs).toBeNull();
      expect(await sm.nextDueInMs([ownType()])).toBeNull();
      expect(await sm.nextDueInMs([type])).toBeGreaterThan(55_000);
      await t.db.query(`UPDATE tasks SET run_at = now() - interval '1 second' WHERE id = $1`, [notDue.id]);
      expect(await sm.nextDueInMs([type])).toBeLessThan(0);
    });

    it('lets concurrent promoters queue each due task exactly once', async () => {
      const type = ownType();
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) ids.push((await newTask(true, { type, delayMs: 60_000 })).id);
      await t.db.query(`UPDATE tasks SET run_at = now() - interval '1 second' WHERE type = $1`, [type]);
      const rounds = await Promise.all(Array.from({ length: 8 }, (_, i) => sm.promoteDue([type], 10, `w${i}`)));
      const again = await Promise.all(Array.from({ length: 8 }, (_, i) => sm.promoteDue([type], 10, `w${i}`)));
      const promoted = [...rounds, ...again].flatMap((r) => r.promoted.map((x) => x.id));
      const more = [];
      for (
        let r = await sm.promoteDue([type], 100, 'w');
        r.promoted.length > 0;
        r = await sm.promoteDue([type], 100, 'w')
      )
        more.push(...r.promoted.map((x) => x.id));
      expect([...promoted, ...more].sort()).toEqual([...ids].sort());
      const [{ n: messages, tasks }] = await t.db.query(
        `SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS tasks FROM ${OUTBOX_WORK_TASKS} w WHERE task_id = ANY($1::text[])`,
        [ids],
      );
      expect({ messages, tasks }).toEqual({ messages: 50, tasks: 50 });
    });

    it('costs one short walk of the partial index per round with 100,000 tasks waiting (EXPLAIN)', async () => {
      const type = ownType();
      await t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, run_at)
         SELECT 'bulk', $1, '{}', 'scheduled', 1, 1000, now() + interval '30 days' + g * interval '1 second'
           FROM generate_series(1, 100000) g`,
        [type],
      );
      await t.db.query(`ANALYZE tasks`);
      try {
        const plan = async (sql: string, params: unknown[]) => {
          const [{ 'QUERY PLAN': json }] = await t.db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
          if (process.env['SHOW_PLAN']) {
            const text = await t.db.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`, params);
            console.log(text.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'));
          }
          const nodes: Record<string, unknown>[] = [];
          const walk = (node: Record<string, unknown>) => {
            nodes.push(node);
            for (const child of (node['Plans'] as Record<string, unknown>[] | undefined) ?? []) walk(child);
          };
          walk(json[0]['Plan']);
          const root = json[0]['Plan'];
          return {
            reads: nodes
              .filter((x) => x['Relation Name'] === 'tasks' && x['Node Type'] !== 'ModifyTable')
              .map((x) => [x['Node Type'], x['Index Name'], x['Actual Rows']]),
            buffers: (root['Shared Hit Blocks'] as number) + (root['Shared Read Blocks'] as number),
          };
        };
        // Index-only when the visibility map allows; a table scan never.
        const INDEX_SCAN = expect.stringMatching(/^Index (Only )?Scan$/);
        // The idle round: one descent of the partial index to its first entry, a few pages.
        const probe = await plan(NEXT_DUE_SQL, [[type]]);
        expect(probe.reads).toEqual([[INDEX_SCAN, 'tasks_scheduled_due', 1]]);
        // And as cheap for a worker that serves another type, with those 100,000 ahead of its own.
        const mine = ownType();
        await newTask(true, { type: mine, runAt: new Date(Date.now() + 40 * 86_400_000) });
        expect((await plan(NEXT_DUE_SQL, [[mine]])).reads).toEqual([[INDEX_SCAN, 'tasks_scheduled_due', 1]]);
        expect(probe.buffers).toBeLessThan(10);
        expect(await sm.nextDueInMs([type])).toBeGreaterThan(29 * 86_400_000);
        // The promotion, when something is due: two probes of the partial index (what is due: none here;
        // what is next: one row) and the update's primary-key lookup of the due rows; no table scan.
        const promotion = await plan(PROMOTE_DUE_SQL, [[type], 1000, 'w1']);
        expect(promotion.reads).toEqual([
          [INDEX_SCAN, 'tasks_scheduled_due', 0],
          [INDEX_SCAN, 'tasks_pkey', 0],
          [INDEX_SCAN, 'tasks_scheduled_due', 1],
        ]);
        expect(promotion.buffers).toBeLessThan(20);
      } finally {
        await t.db.query(`DELETE FROM tasks WHERE type = $1`, [type]);
      }
    }, 60_000);
  });
});
