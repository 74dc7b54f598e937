import { readFileSync } from 'node:fs';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { type AppProcess, waitFor } from '@tasksys/testing';
import { WorkerFleet } from '../test/worker-fleet';

const MiB = 1024 * 1024;

/** Peak resident memory of a process so far (VmHWM, Linux). */
function peakRssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB$/m);
  if (!line) throw new Error(`no VmHWM for ${pid}`);
  return Number(line[1]) * 1024;
}

/**
 * `sql.query` in a real worker process: a result far past SQL_MAX_RESULT_BYTES fails its own task
 * and nothing else. File name contains "processes": CI runs it alone, since it loads the machine.
 */
describe('sql.query in worker processes', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let fleet: WorkerFleet;
  let sm: TaskStateMachine;
  let worker: AppProcess;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    messaging = testMessagingConfig();
    fleet = new WorkerFleet(
      { database: t.config, messaging },
      {
        WORKER_CONCURRENCY: '10',
        SQL_TARGET_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
        LOG_LEVEL: 'info',
      },
    );
    worker = await fleet.start(); // one worker: every task below runs in the same process
  }, 90_000);

  afterAll(async () => {
    await fleet?.stopAll();
    if (messaging) await deleteTopology(buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((t) => t.type) }));
    await t?.drop();
  }, 60_000);

  async function submit(owner: string, type: string, payload: Record<string, unknown>): Promise<string> {
    const { task } = await sm.create(
      { owner, type, payload, maxAttempts: 3, timeoutMs: 120_000 },
      { start: true, actor: `owner:${owner}` },
    );
    return task.id;
  }

  async function task(id: string) {
    const [row] = await t.db.query(`SELECT status, attempt, result, error FROM tasks WHERE id = $1`, [id]);
    return row as {
      status: string;
      attempt: number;
      result: unknown;
      error: { code: string; message: string; retryable: boolean } | null;
    };
  }

  it('a huge result fails that task with a clear error while a task of another owner on the same worker succeeds', async () => {
    const bobSleeps = await submit('bob', 'demo.sleep', { ms: 3000, steps: 3 });
    await waitFor('bob running', async () => (await task(bobSleeps)).status === 'running', 20_000);
    const peakBefore = peakRssBytes(worker.child.pid ?? 0);

    const started = Date.now();
    const aliceHuge = await submit('alice', 'sql.query', {
      sql: "SELECT repeat('x', 200000000) FROM generate_series(1, 20)",
    });
    const bobQuery = await submit('bob', 'sql.query', {
      sql: "SELECT n, repeat('y', n) AS s FROM generate_series(1, 3) AS n",
    });
    await waitFor('alice failed', async () => (await task(aliceHuge)).status === 'failed', 60_000, 100);
    const failedAfterMs = Date.now() - started;

    expect(await task(aliceHuge)).toMatchObject({
      attempt: 1, // not retried: the same query is as big the next time
      error: {
        code: 'SQL.RESULT_TOO_LARGE',
        retryable: false,
        message: expect.stringMatching(/SQL_MAX_RESULT_BYTES \(16777216 bytes/),
      },
    });
    await waitFor(
      'bob succeeded twice',
      async () => (await task(bobSleeps)).status === 'succeeded' && (await task(bobQuery)).status === 'succeeded',
      30_000,
    );
    expect((await task(bobQuery)).result).toEqual({
      columns: ['n', 's'],
      rows: [
        [1, 'y'],
        [2, 'yy'],
        [3, 'yyy'],
      ],
      rowCount: 3,
      truncated: false,
    });

    expect(fleet.alive()).toEqual([worker]); // the same process all along
    const ran: { actor: string }[] = await t.db.query(
      `SELECT DISTINCT actor FROM task_events WHERE task_id = ANY($1::uuid[]) AND to_status = 'running'`,
      [[bobSleeps, aliceHuge, bobQuery]],
    );
    expect(ran.map((r) => r.actor)).toEqual([worker.name]);
    const peakGrowth = peakRssBytes(worker.child.pid ?? 0) - peakBefore;
    console.log(
      `huge result in a worker: failed after ${failedAfterMs} ms, peak RSS grew by ${(peakGrowth / MiB).toFixed(1)} MiB`,
    );
    expect(peakGrowth).toBeLessThan(64 * MiB); // one row alone is 200 MB
  }, 120_000);
});
