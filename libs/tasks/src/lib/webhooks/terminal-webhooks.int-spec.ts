import { createTestDatabase, type TestDatabase } from '../../testing';
import { TaskStateMachine } from '../task-state-machine';

/** Every terminal transition writes its webhook delivery in the same statement; nothing else writes one. */
describe('webhook deliveries written by the state machine (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
  });
  afterAll(() => t?.drop());

  const newTask = async (callbackUrl: string | null, start = true) =>
    (
      await sm.create(
        { owner: 'o', type: 'demo.sleep', payload: { ms: 1 }, maxAttempts: 1, timeoutMs: 60_000, callbackUrl },
        { start, actor: 'test' },
      )
    ).task;
  const deliveries = async (taskId: string) =>
    t.db.query(`SELECT event_type, url, owner, task FROM webhook_deliveries WHERE task_id = $1`, [taskId]);
  const running = async (callbackUrl: string | null) => {
    const task = await newTask(callbackUrl);
    return (await sm.claim(task.id, 'w', 60_000)).task!;
  };

  it('writes one delivery per terminal transition of a task with a callback url, holding the row as it ended', async () => {
    const url = 'http://127.0.0.1:9/hook';
    const a = await running(url);
    expect(await deliveries(a.id)).toEqual([]); // create and claim: not terminal
    await sm.succeed(a.id, a.attempt, { n: 1 }, 'w');
    const [d] = await deliveries(a.id);
    expect(d).toMatchObject({ event_type: 'task.succeeded', url, owner: 'o' });
    expect(d.task).toMatchObject({ id: a.id, status: 'succeeded', result: { n: 1 }, callback_url: url });
    await sm.succeed(a.id, a.attempt, { n: 2 }, 'w'); // a repeat applies nothing, writes nothing
    expect(await deliveries(a.id)).toHaveLength(1);

    const b = await running(url);
    await sm.failFinal(b.id, b.attempt, { code: 'X', message: 'no' }, 'w');
    expect((await deliveries(b.id)).map((r: any) => r.event_type)).toEqual(['task.failed']);

    const c = await running(url);
    await t.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 s' WHERE id = $1`, [c.id]);
    await sm.failAbandoned(c.id, { code: 'TASK.ABANDONED', message: 'died' }, 'sweeper');
    expect((await deliveries(c.id)).map((r: any) => r.event_type)).toEqual(['task.failed']);

    for (const task of [await running(url), await newTask(url, false), await newTask(url)]) {
      await sm.cancel(task.id, 'test');
      expect((await deliveries(task.id)).map((r: any) => r.event_type)).toEqual(['task.cancelled']);
    }

    // Retried and finished again: a second delivery, the first one unchanged.
    await sm.retry(b.id, 'test');
    const b2 = (await sm.claim(b.id, 'w', 60_000)).task!;
    await sm.succeed(b.id, b2.attempt, null, 'w');
    const both = await t.db.query(
      `SELECT event_type, task->>'status' AS status FROM webhook_deliveries WHERE task_id = $1 ORDER BY created_at`,
      [b.id],
    );
    expect(both).toEqual([
      { event_type: 'task.failed', status: 'failed' },
      { event_type: 'task.succeeded', status: 'succeeded' },
    ]);
  });

  it('writes none for a task without a callback url, and none for a fenced-out transition', async () => {
    const a = await running(null);
    await sm.succeed(a.id, a.attempt, null, 'w');
    expect(await deliveries(a.id)).toEqual([]);
    const b = await running('http://127.0.0.1:9/hook');
    expect((await sm.succeed(b.id, b.attempt + 1, null, 'w')).applied).toBe(false);
    expect(await deliveries(b.id)).toEqual([]);
  });

  it('keeps each applied progress report as an event ordered with the status events, and none when fenced out', async () => {
    const a = await running(null);
    expect(await sm.progress(a.id, a.attempt, 'w', 40, 'forty', 60_000)).toBe(true);
    expect(await sm.progress(a.id, a.attempt + 1, 'w', 50, 'stale', 60_000)).toBe(false);
    await sm.succeed(a.id, a.attempt, null, 'w');
    const events = await t.db.query(
      `SELECT kind, id FROM (SELECT 'status' AS kind, id FROM task_events WHERE task_id = $1
                             UNION ALL SELECT 'progress ' || percent, id FROM task_progress WHERE task_id = $1) e ORDER BY id`,
      [a.id],
    );
    expect(events.map((e: any) => e.kind)).toEqual(['status', 'status', 'progress 40', 'status']);
  });
});
