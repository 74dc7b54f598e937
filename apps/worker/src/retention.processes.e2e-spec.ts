import { randomUUID } from 'node:crypto';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, type NewTaskRow, TaskReports, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { waitFor } from '@tasksys/testing';
import { WorkerFleet } from '../test/worker-fleet';

const TASKS = 200;
const RETENTION_MS = 4000;

/**
 * Retention against real worker processes: two workers with a 4-s TASK_RETENTION_MS run 200 tasks,
 * then delete every one of them with its events, never before it was 4 s finished (by the
 * database's clock), with what each worker's /metrics counts adding up to the 200; a task scheduled
 * for later and a report stay. (One round at a time across replicas: task-retention.int-spec.ts.)
 */
describe('retention (processes)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    messaging = testMessagingConfig();
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_SHUTDOWN_GRACE_MS: '0',
        TASK_RETENTION_MS: String(RETENTION_MS),
        TASK_RETENTION_INTERVAL_MS: '300',
        TASK_RETENTION_BATCH_SIZE: '25',
        TASK_RETENTION_PAUSE_MS: '10',
        LOG_LEVEL: 'info',
      },
      `${messaging.TASKS_NAMESPACE}-r`,
    );
  }, 60_000);

  afterAll(async () => {
    await fleet?.stopAll();
    if (messaging) await deleteTopology(buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((x) => x.type) }));
    await t?.drop();
  }, 60_000);

  const row = (delayMs?: number): NewTaskRow => ({
    id: randomUUID(),
    owner: 'test',
    type: 'demo.sleep',
    payload: { ms: 5 },
    maxAttempts: 3,
    timeoutMs: 60_000,
    start: true,
    actor: 'owner:test',
    delayMs,
  });

  const deletedTotal = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('tasksys_retention_deleted_total{table="tasks"}'));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('deletes finished tasks and their events once TASK_RETENTION_MS has passed, never sooner, and keeps the rest', async () => {
    const workers = [await fleet.start(), await fleet.start()];
    const later = row(3_600_000);
    const rows = Array.from({ length: TASKS }, () => row());
    await sm.createMany([later, ...rows]);
    const ids = rows.map((r) => r.id);
    const reported = ids[0]!;
    const report = await new TaskReports(t.db).create(reported, 'test', 'took a while');

    // Every poll: each task's finish time while it is there; once it is gone, how long it had been finished.
    const finishedAt = new Map<string, number>();
    const ageWhenGone = new Map<string, number>();
    await waitFor(
      `${TASKS} tasks run and then deleted`,
      async () => {
        const [{ now }] = await t.db.query(`SELECT extract(epoch FROM now())::float8 * 1000 AS now`);
        const present: { id: string; finished: number | null }[] = await t.db.query(
          `SELECT id, extract(epoch FROM finished_at)::float8 * 1000 AS finished FROM tasks WHERE id = ANY($1::uuid[])`,
          [ids],
        );
        const here = new Set(present.map((p) => p.id));
        for (const p of present) if (p.finished !== null) finishedAt.set(p.id, p.finished);
        for (const id of ids)
          if (!here.has(id) && !ageWhenGone.has(id)) ageWhenGone.set(id, now - (finishedAt.get(id) ?? Infinity));
        return ageWhenGone.size === TASKS;
      },
      90_000,
      200,
    );
    // Each was seen finished before it went (polls 200 ms apart, the retention 4 s), and went no sooner than 4 s after.
    const ages = [...ageWhenGone.values()].sort((a, b) => a - b);
    console.log(
      `deleted ${ages.length} tasks; finished for ${Math.round(ages[0]!)}-${Math.round(ages.at(-1)!)} ms when first seen gone`,
    );
    expect(ages.every(Number.isFinite)).toBe(true);
    expect(ages[0]).toBeGreaterThanOrEqual(RETENTION_MS);
    expect(
      (await t.db.query(`SELECT count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[])`, [ids]))[0].n,
    ).toBe(0);
    // Kept: the task due later (live, however old) and the report of a deleted task.
    expect((await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [later.id]))[0]?.status).toBe('scheduled');
    expect((await new TaskReports(t.db).list(10)).items).toEqual([
      expect.objectContaining({ id: report.id, taskId: reported }),
    ]);
    // The metric: what the two workers say they deleted adds up to the 200.
    const counted = await Promise.all(workers.map((w) => deletedTotal(w.url)));
    console.log(`tasks deleted by each worker: ${counted.join(', ')}`);
    expect(counted.reduce((a, b) => a + b, 0)).toBe(TASKS);
  }, 150_000);
});
