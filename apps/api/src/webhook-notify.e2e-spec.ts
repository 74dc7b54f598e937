import { waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from './testing/api-harness';
import { WebhookReceiver } from './testing/webhook-receiver';

// Its own file: the poll is set to a minute here, so only the NOTIFY of the delivery insert can wake the dispatcher.
describe('webhook dispatch on NOTIFY (real api, PostgreSQL, RabbitMQ)', () => {
  let h: ApiHarness;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    h = await startApi({ WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: '60000' });
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  it('sends a new delivery within seconds although the fallback poll is a minute away', async () => {
    const key = await h.newKey('alice');
    await h.call('POST', '/v1/webhooks/secret', { key });
    for (let i = 0; i < 3; i++) {
      const { body: task } = await h.call('POST', '/v1/tasks', {
        key,
        body: { type: 'demo.sleep', payload: { ms: 1 }, start: false, callbackUrl: receiver.url(`/n${i}`) },
      });
      const ended = Date.now();
      await h.call('POST', `/v1/tasks/${task.id}/cancel`, { key });
      await waitFor(`delivery ${i}`, () => receiver.at(`/n${i}`).length === 1, 10_000, 20);
      expect(receiver.at(`/n${i}`)[0].at - ended).toBeLessThan(5_000);
    }
  });
});
