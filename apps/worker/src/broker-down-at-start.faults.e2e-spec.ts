import { execFileSync } from 'node:child_process';
import { buildTopology } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { AppProcess, freePort, waitFor } from '@tasksys/testing';

/**
 * Broker down at start-up: the worker starts, answers live but not ready, and connects,
 * declares and consumes by itself once the broker is back. Restarts the shared broker, so
 * "faults" in the name: CI runs it alone.
 */
const rabbitmqctl = (...args: string[]) =>
  execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 90_000 }).toString();

describe('worker started while the broker is down', () => {
  let t: TestDatabase;
  const messaging = testMessagingConfig();

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await deleteTopology(buildTopology(messaging, { serves: BUILTIN_TASK_TYPES.map((t) => t.type) })).catch(
      () => undefined,
    );
    await t?.drop();
  });

  it('starts not ready, then connects, declares and runs a task when the broker comes up', async () => {
    const worker = new AppProcess({
      name: 'broker-down-at-start',
      app: 'worker',
      port: await freePort(),
      env: {
        DATABASE_URL: t.config.DATABASE_URL,
        DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
        TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
        WORKER_ID: `${messaging.TASKS_NAMESPACE}-w`,
      },
    });
    rabbitmqctl('stop_app');
    worker.spawn();
    try {
      const health = async (path: string) => (await fetch(`${worker.url}${path}`)).status;
      await waitFor('live while the broker is down', async () => (await health('/health/live')) === 200, 60_000, 200);
      expect(await health('/health/ready')).toBe(503);
      expect(worker.alive).toBe(true);
    } finally {
      rabbitmqctl('start_app');
      rabbitmqctl('await_startup', '--timeout', '60');
    }
    try {
      await worker.ready(60_000); // once the broker is back
      const sm = new TaskStateMachine(t.db);
      const { task } = await sm.create(
        { owner: 'test', type: 'demo.sleep', payload: { ms: 1 }, maxAttempts: 3, timeoutMs: 10_000 },
        { start: true, actor: 'owner:test' },
      );
      await waitFor(
        'the task to succeed',
        async () => {
          const [row] = await t.db.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]);
          return row.status === 'succeeded';
        },
        30_000,
        200,
      );
    } finally {
      await worker.kill();
    }
  }, 180_000);
});
