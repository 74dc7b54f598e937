/**
 * The relay on a private 3-node RabbitMQ cluster (libs/testing's RabbitmqCluster; the shared node is
 * never touched) with quorum queues: a publish the cluster cannot commit (its queue has lost its
 * majority) is not confirmed, so the row stays in the outbox and is sent once the majority is back;
 * and losing the node the app is connected to moves it to another node, where it declares again and
 * goes on. Name contains "processes": the test runner runs it alone (three broker nodes on 2 cores).
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { OutboxRelayService, PublishError, TASK_MESSAGE_SCHEMA_VERSION } from '@tasksys/messaging';
import { createTestMessaging, testMessagingConfig, type TestMessaging } from '@tasksys/messaging/testing';
import { RabbitmqCluster, waitFor } from '@tasksys/testing';
import { writeOutboxRows } from '../testing/outbox-rows';
import { createTestDatabase, type TestDatabase } from '../testing/test-database';
import { PgOutboxStore } from './pg-outbox.store';

jest.setTimeout(300_000);

describe('outbox relay on a RabbitMQ cluster with quorum queues (processes)', () => {
  let cluster: RabbitmqCluster;
  let t: TestDatabase;
  let m: TestMessaging;
  let relay: OutboxRelayService | null = null;

  beforeAll(async () => {
    // `ignore`: the node left alone keeps its clients, so the test sees the quorum queue's answer to a
    // publish it cannot replicate (with pause_minority the node would drop the connection instead).
    cluster = await RabbitmqCluster.start({ partitionHandling: 'ignore' });
    t = await createTestDatabase();
    m = await createTestMessaging(
      testMessagingConfig({
        RABBITMQ_URL: cluster.url,
        RABBITMQ_QUEUE_TYPE: 'quorum',
        RABBITMQ_PUBLISH_TIMEOUT_MS: '2000',
      }),
      true,
      ['demo.relay', 'demo.x'],
    );
  }, 240_000);

  afterEach(async () => {
    await relay?.stop();
    relay = null;
  });

  afterAll(async () => {
    await m?.module.close().catch(() => undefined);
    await t?.drop().catch(() => undefined);
    await cluster?.stopAll();
  }, 60_000);

  const newRelay = () =>
    (relay = new OutboxRelayService(new PgOutboxStore(t.db, t.config), m.publisher, m.status, {
      OUTBOX_BATCH_SIZE: 100,
      OUTBOX_POLL_MS: 200,
    }));

  const outboxRows = async () =>
    ((await t.db.query(`SELECT count(*)::int AS n FROM outbox`)) as Array<{ n: number }>)[0].n;

  /** The node the app's connection is on (the first of RABBITMQ_URL that answered). */
  const connectedNode = async () => {
    const out = await cluster.ctlAny(['list_connections', 'pid', '--quiet', '--no-table-headers']);
    const names = [...out.matchAll(/<([^@<>\s]+@[^.\s>]+)\./g)].map((x) => x[1]);
    return cluster.node(names[0]);
  };

  it('keeps the rows of publishes a queue without a majority cannot confirm, and sends them all once it has one', async () => {
    const queue = m.topology.workQueue('demo.relay');
    const home = await connectedNode();
    const others = cluster.nodes.filter((n) => n.name !== home.name);
    // Two of three replicas gone: the app's own node stays, its queue has no majority.
    for (const n of others) cluster.kill9(n);
    try {
      const err = await m.publisher
        .publishTask({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: randomUUID(), type: 'demo.relay' }, { attempt: 1 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PublishError);
      expect(['timeout', 'nacked']).toContain((err as PublishError).reason);

      const ids = await writeOutboxRows(t, 200);
      const r = newRelay();
      await r.start();
      // Several relay rounds fail (each publish timed out or refused); not one row is taken as sent.
      await waitFor('failed relay rounds', () => r.stats().failed >= 3, 60_000, 100);
      expect(r.stats().sent).toBe(0);
      expect(await outboxRows()).toBe(ids.length);

      // One node back: a majority again (2 of 3), and the relay empties the outbox.
      const back = Date.now();
      await cluster.start(others[0]);
      await r.drain(120_000);
      expect(await outboxRows()).toBe(0);
      const drainedMs = Date.now() - back;

      // Every row reached the queue at least once (a publish that timed out may also land: a duplicate,
      // which the claim absorbs).
      const seen = new Map<string, number>();
      const conn = await connect(home.url);
      try {
        const ch = await conn.createChannel();
        await ch.consume(queue, (msg) => {
          if (!msg) return;
          const id = String(msg.properties.messageId);
          seen.set(id, (seen.get(id) ?? 0) + 1);
          ch.ack(msg);
        });
        await waitFor(`all ${ids.length} rows in ${queue}`, () => ids.every((id) => seen.has(id)), 60_000, 100);
      } finally {
        await conn.close();
      }
      const duplicates = [...seen.values()].reduce((sum, c) => sum + c - 1, 0);
      console.log(
        `no majority: ${r.stats().failed} failed publishes, 0 rows lost; a node back, ${ids.length} rows sent in ${drainedMs} ms, ${duplicates} duplicates`,
      );
    } finally {
      for (const n of others) if (n.pid === undefined) await cluster.start(n);
    }
  });

  it('moves to another node when its node is killed, declares again there, and publishes, consumes and gets cancel signals on', async () => {
    const got: string[] = [];
    const cancels: string[] = [];
    const control = m.consumers.subscribeControl((msg) => cancels.push(msg.taskId));
    const cancel = (taskId: string) =>
      m.publisher.publish(m.topology.exchanges.control, '', {
        v: TASK_MESSAGE_SCHEMA_VERSION,
        kind: 'cancel',
        taskId,
        attempt: 1,
      });
    const consumer = m.consumers.createConsumer(m.topology.workQueue('demo.x'), {
      prefetch: 10,
      onMessage: (d) => {
        got.push(String(d.message.properties.correlationId));
        d.ack();
      },
    });
    try {
      const first = randomUUID();
      await m.publisher.publishTask({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: first, type: 'demo.x' }, { attempt: 1 });
      await waitFor('the first delivery', () => got.includes(first), 20_000);
      await waitFor(
        'a cancel signal',
        async () => {
          await cancel(first);
          return cancels.includes(first);
        },
        20_000,
        500,
      );
      const home = await connectedNode();
      let connects = 0;
      m.amqp.managedConnection.on('connect', () => connects++);
      const killedAt = Date.now();
      cluster.kill9(home);
      await waitFor(
        'a reconnect to another node, topology declared',
        () => connects >= 1 && m.status.isReady(),
        60_000,
      );
      const moved = await connectedNode();
      expect(moved.name).not.toBe(home.name);
      const second = randomUUID();
      await m.publisher.publishTask({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: second, type: 'demo.x' }, { attempt: 1 });
      await waitFor('a delivery after the move', () => got.includes(second), 30_000);
      // The control queue died with its node (exclusive, classic); a fresh one is bound on the new node.
      await waitFor(
        'a cancel signal after the move',
        async () => {
          await cancel(second);
          return cancels.includes(second);
        },
        30_000,
        500,
      );
      console.log(
        `node ${home.name} killed: publishing and consuming on ${moved.name} after ${Date.now() - killedAt} ms`,
      );
      await cluster.start(home);
    } finally {
      await consumer.close();
      await control.close();
    }
  });
});
