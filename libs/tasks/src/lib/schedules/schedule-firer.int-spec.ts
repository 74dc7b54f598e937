import { randomUUID } from 'node:crypto';
import { waitFor } from '@tasksys/testing';
import { createTestDatabase, OUTBOX_WORK_TASKS, type TestDatabase } from '../../testing';
import { TaskStateMachine } from '../task-state-machine';
import { CronExpression } from './cron-expression';
import { NEXT_FIRE_SQL, ScheduleFirer, SCHEDULER_ACTOR } from './schedule-firer.service';
import { type Schedule, ScheduleStore } from './schedule.store';
import type { SchedulesConfig } from './schedules.config';

const TASK = { type: 'demo.sleep', payload: { ms: 1 }, priority: 0, maxAttempts: 3, timeoutMs: 60_000 };

describe('ScheduleFirer (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  let store: ScheduleStore;
  const firers: ScheduleFirer[] = [];

  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 40 });
    sm = new TaskStateMachine(t.db);
    store = new ScheduleStore(t.db);
  });
  afterEach(async () => {
    await Promise.all(firers.splice(0).map((f) => f.stop()));
    await t.db.query(`DELETE FROM schedules; DELETE FROM outbox; DELETE FROM task_events; DELETE FROM tasks`);
  });
  afterAll(() => t.drop());

  function firer(config: Partial<SchedulesConfig> = {}): ScheduleFirer {
    const f = new ScheduleFirer(
      t.db,
      sm,
      { SCHEDULER_ENABLED: true, SCHEDULE_MISFIRE_GRACE_MS: 10_000, ...config },
      t.config,
    );
    firers.push(f);
    return f;
  }

  async function schedule(
    cron: string,
    nextRunAt: Date,
    extra: Partial<{ owner: string; name: string; overlap: 'allow' | 'skip' }> = {},
  ): Promise<Schedule> {
    CronExpression.parse(cron);
    return store.create({
      owner: extra.owner ?? 'alice',
      name: extra.name ?? `s-${randomUUID()}`,
      cron,
      timezone: 'UTC',
      task: TASK,
      overlap: extra.overlap ?? 'allow',
      nextRunAt,
    });
  }

  const dbNow = async (): Promise<Date> => (await t.db.query(`SELECT date_trunc('second', now()) AS now`))[0].now;

  it('many firers racing on separate connections create exactly one task per schedule and fire time, none skipped', async () => {
    const start = new Date((await dbNow()).getTime() - 3000); // three slots to catch up at once, within the grace
    const schedules = await Promise.all(Array.from({ length: 20 }, () => schedule('* * * * * *', start)));
    const racers = Array.from({ length: 8 }, () => firer());
    const until = Date.now() + 4000;
    await Promise.all(
      racers.map(async (f) => {
        while (Date.now() < until) await f.fireOnce();
      }),
    );
    const perSlot: { schedule_id: string; scheduled_for: Date; n: number }[] = await t.db.query(
      `SELECT schedule_id, scheduled_for, count(*)::int AS n FROM tasks GROUP BY 1, 2`,
    );
    expect(perSlot.filter((r) => r.n !== 1)).toEqual([]);
    for (const s of schedules) {
      const slots = perSlot
        .filter((r) => r.schedule_id === s.id)
        .map((r) => r.scheduled_for.getTime())
        .sort((a, b) => a - b);
      // Every second from the first due slot on, none missing, none twice: at least the 3 caught up and 3 more.
      expect(slots.length).toBeGreaterThanOrEqual(6);
      expect(slots[0]).toBe(start.getTime());
      slots.forEach((at, i) => expect(at).toBe(start.getTime() + i * 1000));
      const after = (await store.find(s.id, null))!;
      expect(after.firedCount).toBe(slots.length);
      expect(after.lastFiredAt!.getTime()).toBe(slots.at(-1));
      expect(after.nextRunAt.getTime()).toBe(slots.at(-1)! + 1000);
      expect(after.missedCount).toBe(0);
    }
    // Each through the submit path: queued at once (due), its event by the scheduler, in exactly one work message.
    const [shape] = await t.db.query(
      `SELECT count(*)::int AS tasks,
              count(*) FILTER (WHERE status = 'queued' AND run_at = scheduled_for AND owner = 'alice')::int AS ok,
              (SELECT count(*)::int FROM ${OUTBOX_WORK_TASKS} w) AS messages,
              (SELECT count(DISTINCT task_id)::int FROM ${OUTBOX_WORK_TASKS} w) AS distinct_messages,
              (SELECT count(*)::int FROM task_events WHERE actor = $1 AND to_status = 'queued') AS events
         FROM tasks`,
      [SCHEDULER_ACTOR],
    );
    expect(shape.ok).toBe(shape.tasks);
    expect(shape.messages).toBe(shape.tasks);
    expect(shape.distinct_messages).toBe(shape.tasks);
    expect(shape.events).toBe(shape.tasks);
    // Their ids are UUIDv7, as every new task's (task-id.ts).
    const [{ others }] = await t.db.query(
      `SELECT count(*)::int AS others FROM tasks WHERE substr(id::text, 15, 1) <> '7'`,
    );
    expect(others).toBe(0);
  }, 60_000);

  it('the unique key, not a lock, makes a fire one task: a second insert of the same fire does nothing', async () => {
    const s = await schedule('0 * * * *', new Date(Date.now() + 3_600_000));
    const fireAt = new Date('2026-01-01T10:00:00Z');
    const row = () => ({
      id: randomUUID(),
      owner: 'alice',
      ...TASK,
      start: true,
      actor: SCHEDULER_ACTOR,
      runAt: fireAt,
      scheduleId: s.id,
      scheduledFor: fireAt,
    });
    // Ten concurrent statements, no schedule lock taken: exactly one inserts.
    const results = await Promise.all(Array.from({ length: 10 }, () => sm.createMany([row()])));
    expect(results.map((r) => r.size).reduce((a, b) => a + b)).toBe(1);
    const [{ tasks, messages }] = await t.db.query(
      `SELECT (SELECT count(*)::int FROM tasks) AS tasks, (SELECT count(*)::int FROM outbox) AS messages`,
    );
    expect({ tasks, messages }).toEqual({ tasks: 1, messages: 1 });
  });

  it('missed fires (past the grace): fires once, for the latest missed fire time, then goes on after now', async () => {
    const now = await dbNow();
    const hour = 3_600_000;
    const latest = new Date(Math.floor(now.getTime() / hour) * hour);
    const s = await schedule('0 * * * *', new Date(latest.getTime() - 5 * hour));
    const round = await firer({ SCHEDULE_MISFIRE_GRACE_MS: 5000 }).fireOnce();
    expect(round.fired).toBe(1);
    const tasks: { scheduled_for: Date }[] = await t.db.query(
      `SELECT scheduled_for FROM tasks WHERE schedule_id = $1`,
      [s.id],
    );
    expect(tasks.map((r) => r.scheduled_for)).toEqual([latest]);
    const after = (await store.find(s.id, null))!;
    expect(after.missedCount).toBe(5);
    expect(after.nextRunAt).toEqual(new Date(latest.getTime() + hour));
    expect(after.lastFiredAt).toEqual(latest);
  });

  it('overlap skip: no task while the previous run is unfinished, the skip recorded; fires again once it ended', async () => {
    const now = await dbNow();
    const s = await schedule('* * * * * *', new Date(now.getTime() - 2000), { overlap: 'skip' });
    const f = firer();
    // Three slots due: the first fires, the next two find its task queued and are skipped.
    await f.fireOnce();
    let after = (await store.find(s.id, null))!;
    const first = after.lastTaskId!;
    expect(after.firedCount).toBe(1);
    expect(after.skippedCount).toBeGreaterThanOrEqual(2);
    expect(after.lastSkippedAt!.getTime()).toBeGreaterThan(after.lastFiredAt!.getTime());
    expect((await t.db.query(`SELECT count(*)::int AS n FROM tasks`))[0].n).toBe(1);
    // The run ends: the next fire time creates a task again.
    await sm.cancel(first, 'owner:alice');
    await waitFor(
      'a second run after the first ended',
      async () => {
        await f.fireOnce();
        after = (await store.find(s.id, null))!;
        return after.firedCount === 2;
      },
      10_000,
      100,
    );
    expect(after.lastTaskId).not.toBe(first);
  });

  it('refuses a schedule whose task the tasks table would refuse, so no fire batch can be poisoned by one', async () => {
    for (const [column, value] of [
      ['task_max_attempts', 0],
      ['task_timeout_ms', 0],
      ['task_priority', 10],
    ] as const) {
      await expect(
        t.db.query(
          `INSERT INTO schedules (owner, name, cron, task_type, task_payload, task_max_attempts, task_timeout_ms, task_priority, next_run_at)
           VALUES ('x', $1, '* * * * *', 'demo.sleep', '{}', 1, 1000, 0, now())`.replace(
            `1, 1000, 0`,
            {
              task_max_attempts: `${value}, 1000, 0`,
              task_timeout_ms: `1, ${value}, 0`,
              task_priority: `1, 1000, ${value}`,
            }[column],
          ),
          [column],
        ),
      ).rejects.toThrow(/check constraint/);
    }
  });

  it('a paused schedule does not fire, and the idle probe is one scan of the schedules_due index', async () => {
    const now = await dbNow();
    await schedule('* * * * * *', new Date(now.getTime() - 1000), { name: 'paused' });
    await t.db.query(`UPDATE schedules SET paused = true`);
    expect((await firer().fireOnce()).fired).toBe(0);
    await t.db.query(
      `INSERT INTO schedules (owner, name, cron, task_type, task_payload, task_max_attempts, task_timeout_ms, next_run_at)
       SELECT 'bulk', 'b' || g, '0 0 1 1 *', 'demo.sleep', '{}', 1, 1000, now() + interval '1 day' + g * interval '1 second'
         FROM generate_series(1, 20000) g`,
    );
    // As autovacuum leaves it: dead entries of earlier tests cleaned, the visibility map set.
    await t.db.query(`VACUUM ANALYZE schedules`);
    const plan: { 'QUERY PLAN': string }[] = await t.db.query(`EXPLAIN (ANALYZE, BUFFERS) ${NEXT_FIRE_SQL}`);
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toMatch(/Index (Only )?Scan using schedules_due/);
    const buffers = Number(/Buffers: shared hit=(\d+)/.exec(text)?.[1] ?? 'NaN');
    expect(buffers).toBeLessThan(10);
  });

  it('a running firer is woken by NOTIFY for a schedule created elsewhere, and fires within a second of its time', async () => {
    const f = firer();
    await f.start();
    // Nothing due within 5 s: after its first round it sleeps the longest (5 s) unless told.
    await schedule('0 0 1 1 *', new Date(Date.now() + 86_400_000));
    await waitFor('the first round', () => f.rounds >= 1, 5000, 10);
    const now = await dbNow();
    const s = await schedule('* * * * * *', new Date(now.getTime() + 1500));
    const [task] = await waitFor(
      'the first fire',
      async () => {
        const rows: { created_at: Date; scheduled_for: Date }[] = await t.db.query(
          `SELECT created_at, scheduled_for FROM tasks WHERE schedule_id = $1 ORDER BY scheduled_for LIMIT 1`,
          [s.id],
        );
        return rows.length > 0 ? rows : null;
      },
      10_000,
      50,
    );
    const lateness = task.created_at.getTime() - task.scheduled_for.getTime();
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(lateness).toBeLessThan(1000);
  });
});
