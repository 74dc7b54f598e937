import { createTestMessaging, testMessagingConfig, type TestMessaging } from '../../testing';
import { QueueBrowser } from './queue-browser';

/**
 * Browsing by basic.get + requeue counts as a delivery on a quorum queue. The dead-letter and
 * unrouted queues are browsed by operators again and again: they must not lose a message to it,
 * even with the work queue's delivery limit set as low as it goes.
 */
describe('QueueBrowser on quorum queues (real RabbitMQ)', () => {
  let m: TestMessaging;
  let browser: QueueBrowser;

  beforeAll(async () => {
    m = await createTestMessaging(testMessagingConfig({ RABBITMQ_QUEUE_TYPE: 'quorum', RABBITMQ_DELIVERY_LIMIT: '1' }));
    browser = new QueueBrowser(m.amqp);
  });
  afterAll(() => m?.close());

  it('lists dead letters and unrouted messages 25 times without losing one', async () => {
    for (let i = 0; i < 3; i++) {
      const body = Buffer.from(
        JSON.stringify({ v: 1, taskId: `00000000-0000-4000-8000-00000000000${i}`, type: 'demo.sleep' }),
      );
      await m.publisher.publishDeadLetter(body, { headers: {} } as never, {
        code: 'TEST.DEAD',
        message: 'test',
        routingKey: 'demo.sleep',
      });
    }
    // As the alternate exchange would (the work exchange's catch-all binding aside).
    await m.publisher.publish(m.topology.exchanges.unrouted, 'nobody.serves.this', {
      v: 1,
      taskId: '00000000-0000-4000-8000-00000000000a',
      type: 'x',
    });
    for (let round = 0; round < 25; round++) {
      const dead = await browser.peek(m.topology.queues.dead, 50);
      const unrouted = await browser.peek(m.topology.queues.unrouted, 50);
      expect([dead.total, dead.items.length, unrouted.total, unrouted.items.length]).toEqual([3, 3, 1, 1]);
    }
  }, 60_000);
});
