/**
 * Completion webhooks against the built api and worker as real processes (`npx nx run-many -t build -p
 * api worker` first), a real local HTTP receiver, PostgreSQL and RabbitMQ: a delivery survives the api
 * being killed (-9) in the middle of an attempt and arrives after the restart under the same webhook-id;
 * and a receiver that never answers does not slow the execution of tasks.
 */
import { Webhook } from 'standardwebhooks';
import { buildTopology } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { type AppProcess, ProcessFleet, waitFor } from '@tasksys/testing';
import { WebhookReceiver } from './testing/webhook-receiver';

const ADMIN_KEY = 'webhooks-admin-key-0123456789abcdef';

describe('completion webhooks (processes)', () => {
  let t: TestDatabase;
  let receiver: WebhookReceiver;
  const messaging = testMessagingConfig();
  const env = () => ({
    DATABASE_URL: t.config.DATABASE_URL,
    DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
    RABBITMQ_URL: messaging.RABBITMQ_URL,
    TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
    RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
    LOG_LEVEL: 'info',
  });
  const apis = new ProcessFleet({ app: 'api', names: 'webhooks-api' });
  const workers = new ProcessFleet({ app: 'worker', names: 'webhooks-w' });

  beforeAll(async () => {
    t = await createTestDatabase();
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await apis.stopAll();
    await workers.stopAll();
    await receiver?.close();
    await deleteTopology(buildTopology(messaging, { serves: ['demo.sleep'] })).catch(() => undefined);
    await t?.drop();
  }, 60_000);

  const startApi = () =>
    apis.start({
      ...env(),
      ADMIN_API_KEY: ADMIN_KEY,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_RETRY_BASE_MS: '300',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_POLL_MS: '100',
      WEBHOOK_CONCURRENCY: '4',
      OUTBOX_POLL_MS: '200',
    });

  const call = async (api: AppProcess, method: string, path: string, key: string, body?: unknown) => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };

  const newKey = async (api: AppProcess, owner: string): Promise<string> =>
    (await call(api, 'POST', '/v1/admin/api-keys', ADMIN_KEY, { owner, role: 'user' })).body.key;

  it('delivers after the api is killed (-9) mid-attempt and restarted: same webhook-id, valid signatures', async () => {
    let api = await startApi();
    const key = await newKey(api, 'alice');
    const { secret } = (await call(api, 'POST', '/v1/webhooks/secret', key)).body;
    // First attempt: 500. Second: held open until the api is gone. Then 200.
    receiver.script('/kill', (n) => (n === 1 ? 500 : n === 2 ? 'hang' : 200));
    const task = (
      await call(api, 'POST', '/v1/tasks', key, {
        type: 'demo.sleep',
        payload: { ms: 1 },
        start: false,
        callbackUrl: receiver.url('/kill'),
      })
    ).body;
    expect((await call(api, 'POST', `/v1/tasks/${task.id}/cancel`, key)).status).toBe(202);
    await waitFor('the second attempt to be in flight', () => receiver.at('/kill').length >= 2, 20_000);
    await api.stop(0); // SIGKILL, with the attempt in flight
    api = await apis.processes[0].start();
    const got = await waitFor(
      'the attempt after the restart',
      () => receiver.at('/kill').length >= 3 && receiver.at('/kill'),
      30_000,
    );
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of got) expect(() => new Webhook(secret).verify(r.body, r.headers)).not.toThrow();
    expect(got[2].body).toBe(got[0].body);
    const delivery = await waitFor('the delivery recorded as succeeded', async () => {
      const r = await call(api, 'GET', `/v1/tasks/${task.id}/deliveries`, key);
      return r.body.items?.[0]?.status === 'succeeded' && r.body.items[0];
    });
    expect(delivery.id).toBe(got[0].headers['webhook-id']);
    // The killed process's attempt (2) left no record; the counter shows it was made.
    expect(delivery.attempts.map((a: any) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [3, 200],
    ]);
  }, 90_000);

  it('runs tasks as fast while their receiver never answers and holds every dispatcher slot', async () => {
    const api = apis.alive()[0] ?? (await startApi());
    await workers.start({ ...env(), WORKER_CONCURRENCY: '10', OUTBOX_POLL_MS: '200' });
    const key = await newKey(api, 'bob');
    await call(api, 'POST', '/v1/webhooks/secret', key);
    receiver.script('/slow', () => 'hang');
    const runAll = async (withCallback: boolean): Promise<number> => {
      const started = Date.now();
      const tasks = (
        await call(api, 'POST', '/v1/tasks/batch', key, {
          tasks: Array.from({ length: 20 }, () => ({
            type: 'demo.sleep',
            payload: { ms: 50 },
            ...(withCallback ? { callbackUrl: receiver.url('/slow') } : {}),
          })),
        })
      ).body.items as { id: string }[];
      await waitFor(
        `20 tasks ${withCallback ? 'with' : 'without'} a hanging callback succeeded`,
        async () => {
          const [{ n }] = await t.db.query(
            `SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`,
            [tasks.map((x) => x.id)],
          );
          return n === 20;
        },
        60_000,
        50,
      );
      return Date.now() - started;
    };
    const baseline = await runAll(false);
    const withHangingReceiver = await runAll(true);
    // The dispatcher's four slots are all held by the receiver while the tasks ran.
    await waitFor('four attempts held open at /slow', () => receiver.at('/slow').length >= 4, 10_000);
    console.log(
      `20 tasks: ${baseline} ms without callbacks, ${withHangingReceiver} ms with a receiver that never answers`,
    );
    expect(withHangingReceiver).toBeLessThan(baseline * 3 + 2000);
  }, 120_000);
});
