import { createTestDatabase, type TestDatabase } from '../../testing';
import { TaskStateMachine } from '../task-state-machine';
import { CreateTaskBatchCommand } from './create-task-batch.command';

describe('CreateTaskBatchCommand (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  let batch: CreateTaskBatchCommand;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    batch = new CreateTaskBatchCommand(sm);
  });
  afterAll(() => t.drop());

  const base = { owner: 'alice', type: 'demo.sleep', maxAttempts: 3, timeoutMs: 60_000 };
  const rowsOf = async (id: string) => ({
    task: (
      await t.db.query(
        `SELECT owner, type, payload, status, attempt, max_attempts, timeout_ms, priority, progress_percent FROM tasks WHERE id = $1`,
        [id],
      )
    )[0],
    events: await t.db.query(
      `SELECT from_status, to_status, attempt, actor, error FROM task_events WHERE task_id = $1`,
      [id],
    ),
    outbox: (
      await t.db.query(
        `SELECT exchange, routing_key, correlation_id, body, headers, publish_attempts FROM outbox WHERE correlation_id = $1`,
        [id],
      )
    ).map((r: { body: { taskId: string } }) => ({
      ...r,
      correlation_id: 'ID',
      body: { ...r.body, taskId: r.body.taskId === id ? 'ID' : 'OTHER' },
    })),
  });

  it('writes the same task, event and outbox rows as TaskStateMachine.create, in input order', async () => {
    const single = await sm.create({ ...base, payload: { ms: 1 } }, { start: true, actor: 'owner:alice' });
    const singleNew = await sm.create({ ...base, payload: { ms: 2 } }, { start: false, actor: 'owner:alice' });
    const made = await batch.execute(
      [
        { ...base, payload: { ms: 1 }, start: true },
        { ...base, payload: { ms: 2 }, start: false },
      ],
      { actor: 'owner:alice' },
    );
    expect(made.map((m) => [m.status, (m.payload as { ms: number }).ms])).toEqual([
      ['queued', 1],
      ['new', 2],
    ]);
    expect(await rowsOf(made[0].id)).toEqual(await rowsOf(single.task.id));
    expect(await rowsOf(made[1].id)).toEqual(await rowsOf(singleNew.task.id));
    expect((await rowsOf(made[0].id)).outbox).toHaveLength(1);
  });

  it('single submits at once share statements, each with its own actor and traceparent; a bad one fails alone', async () => {
    const statements = jest.spyOn(sm, 'createMany');
    const traceparent = (i: number) => `00-${String(i).padStart(32, '0')}-${'1'.repeat(16)}-01`;
    const submits = Array.from({ length: 20 }, (_, i) =>
      batch.createOne(
        { ...base, payload: { ms: i }, start: true, ...(i === 7 ? { maxAttempts: 0 } : {}) },
        { actor: `owner:u${i}`, traceparent: traceparent(i) },
      ),
    );
    const settled = await Promise.allSettled(submits);
    expect(settled.map((s) => s.status)).toEqual(settled.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    for (const [i, s] of settled.entries()) {
      if (s.status !== 'fulfilled') continue;
      const rows = await rowsOf(s.value.id);
      expect(rows.task).toMatchObject({ status: 'queued', payload: { ms: i } });
      expect(rows.events).toEqual([expect.objectContaining({ to_status: 'queued', actor: `owner:u${i}` })]);
      expect(rows.outbox).toEqual([expect.objectContaining({ headers: { traceparent: traceparent(i) } })]);
    }
    // Grouped: some statement carried several submits.
    expect(Math.max(...statements.mock.calls.map(([rows]) => rows.length))).toBeGreaterThan(1);
    statements.mockRestore();
  });

  it('writes nothing when one row fails (one statement)', async () => {
    const count = async () =>
      (
        await t.db.query(
          `SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM task_events) + (SELECT count(*) FROM outbox) AS n`,
        )
      )[0].n;
    const before = await count();
    await expect(
      batch.execute(
        [
          { ...base, payload: { ms: 1 }, start: true },
          { ...base, maxAttempts: 0, payload: { ms: 1 }, start: true },
        ],
        { actor: 'x' },
      ),
    ).rejects.toThrow(/max_attempts/);
    expect(await count()).toBe(before);
  });
});
