import { buildTopology } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { AppProcess, freePort } from '@tasksys/testing';

/** The built api and one worker serving demo.sleep, as processes over their own schema and broker namespace. */
export interface SystemProcesses {
  api: AppProcess;
  worker: AppProcess;
  adminKey: string;
  close(): Promise<void>;
}

export async function startSystemProcesses(name: string): Promise<SystemProcesses> {
  const t: TestDatabase = await createTestDatabase({ poolSize: 2 });
  const messaging = testMessagingConfig();
  const adminKey = `${name}-admin-key-0123456789abcdef`;
  const common = {
    DATABASE_URL: t.config.DATABASE_URL,
    DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
    DATABASE_POOL_SIZE: '5',
    RABBITMQ_URL: messaging.RABBITMQ_URL,
    TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
    RABBITMQ_PUBLISH_TIMEOUT_MS: String(messaging.RABBITMQ_PUBLISH_TIMEOUT_MS),
    RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
    OUTBOX_POLL_MS: String(messaging.OUTBOX_POLL_MS),
    LOG_LEVEL: 'warn',
  };
  const api = new AppProcess({
    name: `${name}-api`,
    app: 'api',
    port: await freePort(),
    env: { ...common, ADMIN_API_KEY: adminKey, RATE_LIMIT_PER_MINUTE: '100000', SSE_HEARTBEAT_MS: '1000' },
  });
  const worker = new AppProcess({
    name: `${name}-w1`,
    app: 'worker',
    port: await freePort(),
    env: { ...common, WORKER_TASK_TYPES: 'demo.sleep' },
  });
  const close = async () => {
    await Promise.all([api.stop(15_000), worker.stop(15_000)]);
    await deleteTopology(buildTopology(messaging, { serves: ['demo.sleep'] })).catch(() => undefined);
    await t.drop();
  };
  try {
    await api.start();
    await worker.start();
  } catch (err) {
    await close();
    throw err;
  }
  return { api, worker, adminKey, close };
}
