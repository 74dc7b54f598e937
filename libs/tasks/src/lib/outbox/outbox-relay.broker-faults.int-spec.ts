/**
 * Broker faults: stops, restarts and kills the connections of the local RabbitMQ. That hurts
 * every other test talking to it, so this file runs on its own (scripts/test.mjs runs names
 * matching `faults` serially, after the parallel phase). The broker is always restarted in
 * `finally`/`afterAll`.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { connect, type ChannelModel } from 'amqplib';
import { OutboxRelayService, PublishError, TASK_MESSAGE_SCHEMA_VERSION } from '@tasksys/messaging';
import { createTestMessaging, type TestMessaging } from '@tasksys/messaging/testing';
import { waitFor } from '@tasksys/testing';
import { writeOutboxRows } from '../testing/outbox-rows';
import { createTestDatabase, type TestDatabase } from '../testing/test-database';
import { PgOutboxStore } from './pg-outbox.store';

jest.setTimeout(90_000);

const rabbitmqctl = (...args: string[]) =>
  execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000 }).toString();

function amqpPortOpen(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(5672, '127.0.0.1', () => done(true));
  });
}

function stopBroker(): void {
  rabbitmqctl('stop_app');
}

async function startBroker(): Promise<void> {
  rabbitmqctl('start_app');
  rabbitmqctl('await_startup', '--timeout', '60');
  await waitFor('the AMQP port to accept connections', () => amqpPortOpen(), 30_000, 100);
}

/** Reads the whole queue (noAck) and counts copies per message id. */
async function countInQueue(queue: string, url: string, atLeast: number): Promise<Map<string, number>> {
  const conn: ChannelModel = await connect(url);
  try {
    const ch = await conn.createChannel();
    const counts = new Map<string, number>();
    let total = 0;
    await ch.consume(
      queue,
      (msg) => {
        if (!msg) return;
        total++;
        const id = String(msg.properties.messageId);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      },
      { noAck: true },
    );
    await waitFor(`${atLeast} messages in ${queue}`, () => total >= atLeast, 30_000);
    await waitFor(`${queue} to be empty`, async () => (await ch.checkQueue(queue)).messageCount === 0, 5000);
    await ch.close();
    return counts;
  } finally {
    await conn.close();
  }
}

function summarize(ids: string[], counts: Map<string, number>) {
  const missing = ids.filter((id) => !counts.has(id)).length;
  const duplicates = [...counts.values()].reduce((sum, c) => sum + (c - 1), 0);
  return { missing, duplicates };
}

describe('broker faults (stops and restarts the local RabbitMQ)', () => {
  let t: TestDatabase;
  let m: TestMessaging;
  let relay: OutboxRelayService | null = null;

  beforeAll(async () => {
    if (!(await amqpPortOpen())) await startBroker(); // a previous run died with the broker stopped
    t = await createTestDatabase();
    m = await createTestMessaging(undefined, true, ['demo.relay', 'demo.x']);
  });

  afterEach(async () => {
    await relay?.stop();
    relay = null;
    if (!(await amqpPortOpen())) await startBroker();
  });

  afterAll(async () => {
    try {
      if (!(await amqpPortOpen())) await startBroker();
    } finally {
      await m?.close();
      await t?.drop();
    }
  });

  const newRelay = () =>
    (relay = new OutboxRelayService(new PgOutboxStore(t.db, t.config), m.publisher, m.status, {
      OUTBOX_BATCH_SIZE: 500,
      OUTBOX_POLL_MS: 200,
    }));

  it('delivers 5,000 rows written while the broker is stopped once it starts again; publishes time out meanwhile', async () => {
    try {
      stopBroker();
      await waitFor('not ready after stop_app', () => !m.status.isReady(), 10_000);
      const ids = await writeOutboxRows(t, 5000);
      const r = newRelay();
      await r.start();

      const t0 = Date.now();
      const err = await m.publisher
        .publishTask({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: randomUUID(), type: 'demo.down' }, { attempt: 1 })
        .catch((e: unknown) => e);
      const timeoutMs = Date.now() - t0;
      expect((err as PublishError).reason).toBe('timeout');
      expect(timeoutMs).toBeGreaterThanOrEqual(m.config.RABBITMQ_PUBLISH_TIMEOUT_MS - 50);
      expect(timeoutMs).toBeLessThan(m.config.RABBITMQ_PUBLISH_TIMEOUT_MS + 2000);
      expect(r.stats().sent).toBe(0);
      expect(r.stats().lastError).toBeTruthy();

      const restarted = Date.now();
      await startBroker();
      await waitFor('ready after start_app', () => m.status.isReady(), 30_000, 100);
      const readyMs = Date.now() - restarted;
      await r.drain(45_000);
      const drainedMs = Date.now() - restarted;
      const counts = await countInQueue(m.topology.workQueue('demo.relay'), m.config.RABBITMQ_URL, ids.length);
      const { missing, duplicates } = summarize(ids, counts);
      expect(missing).toBe(0);
      expect(duplicates).toBeLessThanOrEqual(10);
      console.log(
        `broker stopped: publish timeout after ${timeoutMs} ms; ready ${readyMs} ms after start_app; 5000 rows drained ${drainedMs} ms after; duplicates ${duplicates}`,
      );
    } finally {
      if (!(await amqpPortOpen())) await startBroker();
    }
  });

  it('delivers every row at least once when the broker restarts in the middle of relaying', async () => {
    try {
      const ids = await writeOutboxRows(t, 5000);
      const r = newRelay();
      const started = Date.now();
      await r.start();
      await waitFor('the relay to be under way', () => r.stats().sent >= 1000, 20_000, 5);
      const sentBefore = r.stats().sent;
      stopBroker();
      await waitFor('not ready after stop_app', () => !m.status.isReady(), 10_000);
      await startBroker();
      await r.drain(45_000);
      const ms = Date.now() - started;
      const counts = await countInQueue(m.topology.workQueue('demo.relay'), m.config.RABBITMQ_URL, ids.length);
      const { missing, duplicates } = summarize(ids, counts);
      expect(missing).toBe(0);
      // At most the batch in flight when the broker went away is published twice.
      expect(duplicates).toBeLessThanOrEqual(500);
      console.log(
        `restart mid-relay (after ${sentBefore} sent): 5000 rows in ${ms} ms, duplicates ${duplicates}, failed publishes ${r.stats().failed}`,
      );
    } finally {
      if (!(await amqpPortOpen())) await startBroker();
    }
  });

  it('publisher and consumer recover from close_all_connections without a restart', async () => {
    const got: string[] = [];
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
      await waitFor('the first delivery', () => got.includes(first), 10_000);

      let connects = 0;
      m.amqp.managedConnection.on('connect', () => connects++);
      const closedAt = Date.now();
      rabbitmqctl('close_all_connections', 'test');
      await waitFor('a reconnect with the topology declared', () => connects >= 1 && m.status.isReady(), 20_000);
      const second = randomUUID();
      await m.publisher.publishTask({ v: TASK_MESSAGE_SCHEMA_VERSION, taskId: second, type: 'demo.x' }, { attempt: 1 });
      await waitFor('a delivery after the reconnect', () => got.includes(second), 10_000);
      console.log(`close_all_connections: publish + consume again after ${Date.now() - closedAt} ms`);
    } finally {
      await consumer.close();
    }
  });
});
