import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from './testing/api-harness';
import { WebhookReceiver } from './testing/webhook-receiver';

/** The signature of the Standard Webhooks spec, computed here by hand: HMAC-SHA256 keyed with the secret's bytes. */
function specSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

describe('completion webhooks (real api, PostgreSQL, RabbitMQ and a local HTTP receiver)', () => {
  let h: ApiHarness;
  let receiver: WebhookReceiver;
  let key: string;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    h = await startApi({
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_RETRY_BASE_MS: '100',
      WEBHOOK_RETRY_PERIOD_MS: '4000',
      WEBHOOK_TIMEOUT_MS: '1000',
      WEBHOOK_POLL_MS: '50',
    });
    key = await h.newKey('alice');
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  /** A task left `new` with a callback, then cancelled: a terminal transition without a worker. */
  const endTask = async (callbackUrl: string, owner = key): Promise<any> => {
    const created = await h.call('POST', '/v1/tasks', {
      key: owner,
      body: { type: 'demo.sleep', payload: { ms: 1 }, start: false, callbackUrl },
    });
    expect(created.status).toBe(201);
    expect((await h.call('POST', `/v1/tasks/${created.body.id}/cancel`, { key: owner })).status).toBe(202);
    return created.body;
  };

  it('refuses a callbackUrl until the owner has a signing secret, then returns a whsec_ secret once', async () => {
    const r = await h.call('POST', '/v1/tasks', {
      key,
      body: { type: 'demo.sleep', payload: { ms: 1 }, callbackUrl: receiver.url('/x') },
    });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('callbackUrl');
    expect(r.body.message).toMatch(/POST \/v1\/webhooks\/secret/);
    const s = await h.call('POST', '/v1/webhooks/secret', { key });
    expect(s.status).toBe(201);
    expect(s.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(s.body.previousExpiresAt).toBeNull();
  });

  it('retries a failing receiver with the same webhook-id and valid signatures until it answers 2xx; every attempt is listed', async () => {
    // The secret belongs to the owner, not the key: one key of bob's creates it, another rotates it.
    await h.call('POST', '/v1/webhooks/secret', { key: await h.newKey('bob') });
    const bob = await h.newKey('bob');
    const { body: s } = await h.call('POST', '/v1/webhooks/secret', { key: bob });
    receiver.script('/retry', (n) => (n <= 2 ? 500 : 200));
    const task = await endTask(receiver.url('/retry'), bob);

    const got = await waitFor(
      'three attempts at /retry',
      () => receiver.at('/retry').length >= 3 && receiver.at('/retry'),
    );
    const ids = new Set(got.map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(1);
    const view = (await h.call('GET', `/v1/tasks/${task.id}`, { key: bob })).body;
    expect(view.status).toBe('cancelled');
    for (const r of got) {
      // The current secret and the previous one (rotated a moment ago) both sign.
      const signatures = r.headers['webhook-signature'].split(' ');
      expect(signatures).toHaveLength(2);
      expect(signatures[0]).toBe(
        specSignature(s.secret, r.headers['webhook-id'], r.headers['webhook-timestamp'], r.body),
      );
      expect(() => new Webhook(s.secret).verify(r.body, r.headers)).not.toThrow();
      expect(JSON.parse(r.body)).toEqual(view);
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect(got[0].body).toBe(got[2].body);
    expect(got[1].at - got[0].at).toBeGreaterThanOrEqual(40); // backoff, not a hot loop

    const deliveries = await waitFor('the delivery to be recorded as succeeded', async () => {
      const r = await h.call('GET', `/v1/tasks/${task.id}/deliveries`, { key: bob });
      return r.body.items?.[0]?.status === 'succeeded' && r.body.items;
    });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0].id).toBe([...ids][0]);
    expect(deliveries[0].eventType).toBe('task.cancelled');
    expect(deliveries[0].attempts.map((a: any) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(deliveries[0].attempts[0].error).toBe('HTTP 500');
    expect(receiver.at('/retry')).toHaveLength(3); // nothing after the 2xx
    const metrics = (await h.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/^tasksys_webhook_attempts_total\{outcome="http_error"\} [2-9]/m);
    expect(metrics).toMatch(/^tasksys_webhook_deliveries_total\{outcome="succeeded"\} [1-9]/m);
    expect(metrics).toMatch(/^tasksys_webhook_attempt_duration_seconds_count\{outcome="success"\} [1-9]/m);
    // Another owner cannot see them.
    expect((await h.call('GET', `/v1/tasks/${task.id}/deliveries`, { key })).status).toBe(404);
  });

  it('signs under both secrets during the rotation window, each signature verifying with its own secret only', async () => {
    const carol = await h.newKey('carol');
    const first = (await h.call('POST', '/v1/webhooks/secret', { key: carol })).body.secret as string;
    const second = (await h.call('POST', '/v1/webhooks/secret', { key: carol })).body;
    expect(Date.parse(second.previousExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);
    await endTask(receiver.url('/rotation'), carol);
    const [r] = await waitFor(
      'the rotation delivery',
      () => receiver.at('/rotation').length >= 1 && receiver.at('/rotation'),
    );
    const [current, previous] = r.headers['webhook-signature'].split(' ');
    const id = r.headers['webhook-id'];
    const ts = r.headers['webhook-timestamp'];
    expect(current).toBe(specSignature(second.secret, id, ts, r.body));
    expect(previous).toBe(specSignature(first, id, ts, r.body));
    const only = (sig: string) => ({ ...r.headers, 'webhook-signature': sig });
    expect(() => new Webhook(second.secret).verify(r.body, only(current))).not.toThrow();
    expect(() => new Webhook(first).verify(r.body, only(previous))).not.toThrow();
    expect(() => new Webhook(first).verify(r.body, only(current))).toThrow();
    expect(() => new Webhook(second.secret).verify(r.body, only(previous))).toThrow();

    // A third rotation ends the first secret at once: only the last two sign.
    const third = (await h.call('POST', '/v1/webhooks/secret', { key: carol })).body.secret as string;
    await endTask(receiver.url('/rotation2'), carol);
    const [r2] = await waitFor(
      'the second rotation delivery',
      () => receiver.at('/rotation2').length >= 1 && receiver.at('/rotation2'),
    );
    const sigs = r2.headers['webhook-signature'].split(' ');
    expect(sigs).toEqual([
      specSignature(third, r2.headers['webhook-id'], r2.headers['webhook-timestamp'], r2.body),
      specSignature(second.secret, r2.headers['webhook-id'], r2.headers['webhook-timestamp'], r2.body),
    ]);
    expect(() => new Webhook(first).verify(r2.body, r2.headers)).toThrow();
  });

  it('does not follow a redirect: a 302 is a failed attempt and the Location is never requested', async () => {
    receiver.script('/redirect', () => ({ status: 302, headers: { location: receiver.url('/redirect-target') } }));
    const task = await endTask(receiver.url('/redirect'));
    const attempts = await waitFor('two attempts of the redirected delivery', async () => {
      const r = await h.call('GET', `/v1/tasks/${task.id}/deliveries`, { key });
      return r.body.items?.[0]?.attempts.length >= 2 && r.body.items[0].attempts;
    });
    expect(attempts[0]).toMatchObject({ statusCode: 302, error: 'redirect 302 not followed' });
    expect(receiver.at('/redirect-target')).toHaveLength(0);
  });

  it('gives up after WEBHOOK_RETRY_PERIOD_MS, times out a hanging receiver, and lists the failing endpoints', async () => {
    receiver.script('/down', () => 503);
    receiver.script('/hang', () => 'hang');
    const down = await endTask(receiver.url('/down'));
    const hang = await endTask(receiver.url('/hang'));
    const failed = await waitFor(
      'the delivery to /down to fail for good',
      async () => {
        const r = await h.call('GET', `/v1/tasks/${down.id}/deliveries`, { key });
        return r.body.items?.[0]?.status === 'failed' && r.body.items[0];
      },
      20_000,
    );
    expect(failed.attempts.length).toBeGreaterThanOrEqual(3);
    expect(failed.finishedAt).not.toBeNull();
    const n = receiver.at('/down').length;
    const hung = await waitFor('a timed-out attempt at /hang', async () => {
      const r = await h.call('GET', `/v1/tasks/${hang.id}/deliveries`, { key });
      return r.body.items?.[0]?.attempts?.[0];
    });
    expect(hung.error).toBe('timeout after 1000 ms');
    expect(hung.durationMs).toBeGreaterThanOrEqual(990);
    const endpoints = (await h.call('GET', '/v1/webhooks/failing-endpoints', { key })).body.items;
    expect(endpoints).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ url: receiver.url('/down'), owner: 'alice', failed: 1, lastStatusCode: 503 }),
        expect.objectContaining({ url: receiver.url('/hang'), owner: 'alice' }),
      ]),
    );
    // Owners see only theirs; admins everyone's.
    const other = await h.newKey('dave');
    expect((await h.call('GET', '/v1/webhooks/failing-endpoints', { key: other })).body.items).toEqual([]);
    expect((await h.call('GET', '/v1/webhooks/failing-endpoints')).body.items.length).toBeGreaterThanOrEqual(2);
    // Failed for good: no more attempts.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at('/down')).toHaveLength(n);
  }, 40_000);
});
