import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConsumeMessage, type XDeath } from 'amqplib';
import { GiveUp, waitFor } from '@tasksys/testing';
import { createTestMessaging, testMessagingConfig, type TestMessaging } from '../testing';
import type { Delivery } from './consuming/consumer.factory';
import { HEADERS } from './messaging.constants';
import { PublishError, TopologyMismatchError } from './messaging.errors';
import { TASK_MESSAGE_SCHEMA_VERSION, type TaskMessage } from './task-message';
import { buildTopology } from './topology/topology';
import { declareTopology, TopologyDeclarer } from './topology/topology-declarer';

/** Runs one operation on a fresh channel and returns its error (or null), keeping the connection. */
async function errorOf(conn: ChannelModel, op: (ch: Channel) => Promise<unknown>): Promise<Error | null> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    await op(ch);
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** The task types this file's "worker" serves: one work queue each. */
const TEST_TYPES = [
  'demo.sleep',
  'demo.props',
  'demo.outbox',
  'demo.dead',
  'demo.retry',
  'demo.ab',
  'demo.poison',
  'demo.qos',
];

describe('messaging against the local RabbitMQ', () => {
  let m: TestMessaging;
  let raw: ChannelModel;
  const extraExchange = () => `${m.topology.namespace}.no-ae`;

  beforeAll(async () => {
    m = await createTestMessaging(testMessagingConfig(), true, TEST_TYPES);
    raw = await connect(m.config.RABBITMQ_URL);
  });

  afterAll(async () => {
    await raw?.close().catch(() => undefined);
    await m?.close({ exchanges: [extraExchange()] });
  });

  const task = (type = 'demo.sleep'): TaskMessage => ({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: randomUUID(), type });
  const queueOf = (type: string) => m.topology.workQueue(type);

  /** Collects deliveries of `queue` until `count` arrived; acks them. */
  async function receive(
    queue: string,
    count: number,
    timeoutMs = 5000,
  ): Promise<Array<{ msg: ConsumeMessage; at: number }>> {
    const got: Array<{ msg: ConsumeMessage; at: number }> = [];
    const consumer = m.consumers.createConsumer(queue, {
      prefetch: 50,
      onMessage: (d: Delivery) => {
        got.push({ msg: d.message, at: Date.now() });
        d.ack();
      },
    });
    try {
      await waitFor(`${count} deliveries on ${queue}`, () => got.length >= count, timeoutMs);
      return got;
    } finally {
      await consumer.close();
    }
  }

  describe('topology', () => {
    it('declares every exchange and queue of the list (passive checks)', async () => {
      for (const x of m.topology.declarations.exchanges)
        expect(await errorOf(raw, (ch) => ch.checkExchange(x.name))).toBeNull();
      for (const q of m.topology.declarations.queues)
        expect(await errorOf(raw, (ch) => ch.checkQueue(q.name))).toBeNull();
      expect(m.topology.queues.retry.map((t) => t.name)).toEqual([
        `${m.topology.namespace}.retry.300ms`,
        `${m.topology.namespace}.retry.1s`,
      ]);
    });

    it('has exactly the listed arguments: re-asserting with the same ones passes, changing any one is refused by name', async () => {
      await expect(declareTopology(raw, m.topology)).resolves.toBeUndefined();
      for (const q of m.topology.declarations.queues) {
        for (const arg of Object.keys(q.arguments)) {
          const changed = { ...q.arguments, [arg]: 'something-else' };
          const err = await errorOf(raw, (ch) => ch.assertQueue(q.name, { durable: true, arguments: changed }));
          expect(err?.message).toContain(`inequivalent arg '${arg}' for queue '${q.name}'`);
        }
        // An argument the broker has that the declaration lacks also differs (e.g. a missing DLX).
        if (Object.keys(q.arguments).length > 0) {
          const err = await errorOf(raw, (ch) => ch.assertQueue(q.name, { durable: true }));
          expect(err?.message).toMatch(/PRECONDITION_FAILED - inequivalent arg/);
        }
      }
      for (const x of m.topology.declarations.exchanges) {
        const otherType = x.type === 'fanout' ? 'topic' : 'fanout';
        const err = await errorOf(raw, (ch) =>
          ch.assertExchange(x.name, otherType, { durable: true, arguments: x.arguments }),
        );
        expect(err?.message).toContain(`inequivalent arg 'type' for exchange '${x.name}'`);
      }
      const work = m.topology.declarations.exchanges[0];
      const err = await errorOf(raw, (ch) =>
        ch.assertExchange(work.name, 'topic', { durable: true, arguments: { 'alternate-exchange': 'x' } }),
      );
      expect(err?.message).toContain(`inequivalent arg 'alternate-exchange' for exchange '${work.name}'`);
    });

    it('reports a redeclaration with other arguments as TopologyMismatchError naming queue and argument; the connection stays up', async () => {
      const quorum = buildTopology({ ...m.config, RABBITMQ_QUEUE_TYPE: 'quorum' });
      const err = await declareTopology(raw, quorum).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TopologyMismatchError);
      const mismatch = err as TopologyMismatchError;
      expect(mismatch.kind).toBe('queue');
      expect(m.topology.declarations.queues.map((q) => q.name)).toContain(mismatch.entity);
      expect(mismatch.message).toMatch(/inequivalent arg '(x-queue-type|x-delivery-limit)'/);
      // Same connection still usable.
      expect(await errorOf(raw, (ch) => ch.checkQueue(queueOf('demo.sleep')))).toBeNull();
    });

    it('stops start-up on a mismatch while the app connection stays alive and publishing', async () => {
      const quorum = buildTopology({ ...m.config, RABBITMQ_QUEUE_TYPE: 'quorum' });
      const declarer = new TopologyDeclarer(m.amqp, quorum);
      await expect(declarer.onApplicationBootstrap()).rejects.toThrow(TopologyMismatchError);
      expect(declarer.isDeclared()).toBe(false);
      expect(m.amqp.connected).toBe(true);
      await expect(m.publisher.publishTask(task(), { attempt: 1 })).resolves.toBeUndefined();
      await receive(queueOf('demo.sleep'), 1);
    });
  });

  describe('publishing', () => {
    it('sets persistent, ids, attempt, schema version and traceparent', async () => {
      const msg = task('demo.props');
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await m.publisher.publishTask(msg, { attempt: 3, traceparent });
      const [{ msg: got }] = await receive(queueOf('demo.props'), 1);
      expect(got.fields.routingKey).toBe('demo.props');
      expect(got.properties.deliveryMode).toBe(2);
      expect(got.properties.contentType).toBe('application/json');
      expect(got.properties.correlationId).toBe(msg.taskId);
      expect(got.properties.messageId).toMatch(/^[0-9a-f-]{36}$/);
      expect(got.properties.headers).toMatchObject({
        [HEADERS.attempt]: 3,
        [HEADERS.schemaVersion]: TASK_MESSAGE_SCHEMA_VERSION,
        [HEADERS.traceparent]: traceparent,
      });
      expect(JSON.parse(got.content.toString())).toEqual(msg);
    });

    it('routes a type no one serves to the unrouted queue through the alternate exchange', async () => {
      await m.publisher.publish(m.topology.exchanges.work, 'nobody.serves', { hello: 1 });
      const [{ msg }] = await receive(m.topology.queues.unrouted, 1);
      expect(msg.fields.routingKey).toBe('nobody.serves');
    });

    it('rejects a returned publish as `returned` and counts it when no alternate exchange can route it', async () => {
      const ch = await raw.createChannel();
      await ch.assertExchange(extraExchange(), 'topic', { durable: false });
      await ch.close();
      const before = m.publisher.stats();
      const err = await m.publisher.publish(extraExchange(), 'nobody.listens', { hello: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PublishError);
      expect((err as PublishError).reason).toBe('returned');
      expect((err as PublishError).message).toContain('NO_ROUTE');
      expect(m.publisher.stats().returned).toBe(before.returned + 1);
      expect(m.publisher.stats().confirmed).toBe(before.confirmed);
    });

    it('relies on basic.return arriving before the confirm on the same channel', async () => {
      const ch = await raw.createConfirmChannel();
      const order: string[] = [];
      ch.on('return', () => order.push('return'));
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve, reject) =>
          ch.publish(extraExchange(), 'nobody', Buffer.from('x'), { mandatory: true }, (err) => {
            order.push('ack');
            if (err) reject(err);
            else resolve();
          }),
        );
      }
      await ch.close();
      expect(order).toEqual(Array.from({ length: 20 }, () => ['return', 'ack']).flat());
    });

    it('rejects an outbox row with an unknown exchange role without touching the channel', async () => {
      const err = await m.publisher
        .publishOutbox({
          id: '1',
          exchange: 'nope',
          routingKey: 'x',
          messageId: randomUUID(),
          correlationId: null,
          body: {},
          headers: {},
          createdAt: new Date(),
          publishAttempts: 0,
        })
        .catch((e: unknown) => e);
      expect((err as PublishError).reason).toBe('unknown-exchange');
      await expect(m.publisher.publishTask(task(), { attempt: 1 })).resolves.toBeUndefined();
      await receive(queueOf('demo.sleep'), 1);
    });

    it('maps outbox roles to the namespaced exchanges and keeps the row message id', async () => {
      const msg = task('demo.outbox');
      const messageId = randomUUID();
      await m.publisher.publishOutbox({
        id: '2',
        exchange: 'work',
        routingKey: msg.type,
        messageId,
        correlationId: msg.taskId,
        body: msg,
        headers: { [HEADERS.attempt]: 1 },
        createdAt: new Date(),
        publishAttempts: 0,
      });
      const [{ msg: got }] = await receive(queueOf('demo.outbox'), 1);
      expect(got.properties.messageId).toBe(messageId);
      expect(got.properties.headers?.[HEADERS.attempt]).toBe(1);
    });

    it('dead-letters explicitly with reason headers and the original routing key', async () => {
      await m.publisher.publishTask(task('demo.dead'), { attempt: 5 });
      const [{ msg: original }] = await receive(queueOf('demo.dead'), 1);
      await m.publisher.publishDeadLetter(original.content, original.properties, {
        code: 'TASK.MAX_ATTEMPTS',
        message: 'failed 5 times',
        queue: queueOf('demo.dead'),
        routingKey: original.fields.routingKey,
      });
      const [{ msg: dead }] = await receive(m.topology.queues.dead, 1);
      expect(dead.properties.correlationId).toBe(original.properties.correlationId);
      expect(dead.properties.headers).toMatchObject({
        [HEADERS.reasonCode]: 'TASK.MAX_ATTEMPTS',
        [HEADERS.reason]: 'failed 5 times',
        [HEADERS.originalRoutingKey]: 'demo.dead',
        [HEADERS.originalQueue]: queueOf('demo.dead'),
        [HEADERS.attempt]: 5,
      });
    });
  });

  describe('retry tiers', () => {
    it('bring a message back to the work queue after the tier delay, under its task type, with x-death', async () => {
      const msg = task('demo.retry');
      const started = Date.now();
      // The 1 s tier (not the 300 ms one): the count below must be read before the message expires, on a busy machine too.
      const tier = await m.publisher.publishRetry(msg, { attempt: 2, delayMs: 1000 });
      expect(tier.label).toBe('1s');
      // Only the chosen tier holds it (a binding on an `x-` header would match every tier).
      const ch = await raw.createChannel();
      const counts = await Promise.all(m.topology.queues.retry.map((t) => ch.checkQueue(t.name)));
      await ch.close();
      expect(counts.map((c) => c.messageCount)).toEqual([0, 1]);

      const [{ msg: back, at }] = await receive(queueOf('demo.retry'), 1);
      const elapsed = at - started;
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(3000);
      expect(back.fields.routingKey).toBe('demo.retry');
      expect(back.properties.correlationId).toBe(msg.taskId);
      const deaths = back.properties.headers?.['x-death'] as XDeath[];
      expect(deaths[0]).toMatchObject({
        queue: tier.name,
        reason: 'expired',
        exchange: m.topology.exchanges.retry,
        count: 1,
      });
      expect(deaths[0]['routing-keys']).toEqual(['demo.retry']);
      console.log(`retry tier 1s: back in the work queue after ${elapsed} ms`);
    });
  });

  describe('consumers', () => {
    it('stop() ends new deliveries, lets in-flight ones be acked, and settling twice is harmless', async () => {
      const got: Delivery[] = [];
      const consumer = m.consumers.createConsumer(queueOf('demo.ab'), { prefetch: 1, onMessage: (d) => got.push(d) });
      const first = task('demo.ab');
      const second = task('demo.ab');
      await m.publisher.publishTask(first, { attempt: 1 });
      await m.publisher.publishTask(second, { attempt: 1 });
      await waitFor('the first delivery', () => got.length === 1, 10_000);
      await consumer.stop();
      got[0].ack();
      got[0].ack(); // ignored with a warning instead of closing the channel
      const ch = await raw.createChannel();
      // The second message stays in the queue: nobody consumes it any more.
      await waitFor(
        'one message left',
        async () => (await ch.checkQueue(queueOf('demo.ab'))).messageCount === 1,
        10_000,
      );
      expect(got).toHaveLength(1);
      await consumer.close();
      got[0].reject(); // on a closed channel: no-op, no unhandled rejection
      await ch.close();
      const [{ msg }] = await receive(queueOf('demo.ab'), 1);
      expect(JSON.parse(msg.content.toString()).taskId).toBe(second.taskId);
    });

    it('requeue() gives a delivery back, reject() dead-letters it through the queue DLX', async () => {
      const seen: Delivery[] = [];
      const consumer = m.consumers.createConsumer(queueOf('demo.poison'), {
        prefetch: 1,
        onMessage: (d) => {
          seen.push(d);
          if (seen.length === 1) d.requeue();
          else d.reject();
        },
      });
      await m.publisher.publishTask(task('demo.poison'), { attempt: 1 });
      await waitFor('a redelivery', () => seen.length === 2, 10_000);
      expect(seen[1].message.fields.redelivered).toBe(true);
      await consumer.close();
      const [{ msg }] = await receive(m.topology.queues.dead, 1);
      expect((msg.properties.headers?.['x-death'] as Array<{ reason: string }>)[0].reason).toBe('rejected');
    });

    it('setPrefetch changes, on the live channel, how many unacked deliveries the broker sends (down and up)', async () => {
      const queue = queueOf('demo.qos');
      let held: Delivery[] = [];
      let acked = 0;
      const consumer = m.consumers.createWorkConsumer([queue], { prefetch: 3, onMessage: (d) => held.push(d) });
      const ch = await raw.createChannel();
      try {
        for (let i = 0; i < 20; i++) await m.publisher.publishTask(task('demo.qos'), { attempt: 0 });
        /** The broker holds back all but `limit` unacked: `limit` here, the rest still ready in the queue. */
        const atLimit = async (limit: number) => {
          const settled = async () =>
            held.length === limit && (await ch.checkQueue(queue)).messageCount === 20 - acked - limit;
          await waitFor(`${limit} deliveries unacked, the rest ready`, settled, 10_000);
          // And it stays so: more would have come at once (a short look for what must not happen).
          await new Promise((r) => setTimeout(r, 300));
          expect(await settled()).toBe(true);
        };
        const ackAll = () => {
          for (const d of held) d.ack();
          acked += held.length;
          held = [];
        };
        await atLimit(3);
        await consumer.setPrefetch(1);
        ackAll();
        await atLimit(1);
        await consumer.setPrefetch(6);
        await atLimit(6);
        ackAll();
      } finally {
        await consumer.close();
        await ch.purgeQueue(queue);
        await ch.close();
      }
    }, 30_000);

    it('subscribeControl receives control messages on its own queue', async () => {
      const got: unknown[] = [];
      const consumer = m.consumers.subscribeControl((c) => got.push(c));
      const taskId = randomUUID();
      // The queue is bound asynchronously: publish until the first one arrives (before the
      // binding exists, the mandatory publish is returned).
      await waitFor(
        'a control message',
        async () => {
          await m.publisher
            .publish(m.topology.exchanges.control, '', { v: 1, kind: 'cancel', taskId })
            .catch((err: PublishError) => {
              if (err.reason !== 'returned') throw new GiveUp(`publishing failed (${err.reason}): ${err.message}`);
            });
          return got.length > 0;
        },
        5000,
        100,
      );
      expect(got[0]).toEqual({ v: 1, kind: 'cancel', taskId });
      await consumer.close();
    });
  });

  it('reports ready while connected with the topology declared', () => {
    expect(m.status.isReady()).toBe(true);
    expect(m.status.lastError()).toBeNull();
  });
});
