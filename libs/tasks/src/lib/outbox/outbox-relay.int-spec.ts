import { connect, type ChannelModel } from 'amqplib';
import { OutboxRelayService } from '@tasksys/messaging';
import { createTestMessaging, type TestMessaging } from '@tasksys/messaging/testing';
import { waitFor } from '@tasksys/testing';
import { pgPool } from '../prepared-query';
import { writeOutboxRows } from '../testing/outbox-rows';
import { createTestDatabase, type TestDatabase } from '../testing/test-database';
import { PgOutboxStore } from './pg-outbox.store';

/** Consumes the whole queue (no ack needed: these copies are only counted) and counts per message id. */
async function countInQueue(conn: ChannelModel, queue: string, expected: number): Promise<Map<string, number>> {
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
  await waitFor(`${expected} messages in ${queue}`, () => total >= expected, 20_000);
  // Anything beyond `expected` (duplicates) has arrived too once the queue reads empty.
  await waitFor(`${queue} to be empty`, async () => (await ch.checkQueue(queue)).messageCount === 0, 5000);
  await ch.close();
  return counts;
}

describe('outbox relay (PostgreSQL + RabbitMQ)', () => {
  let t: TestDatabase;
  let m: TestMessaging;
  let raw: ChannelModel;
  const relays: OutboxRelayService[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    m = await createTestMessaging(undefined, true, ['demo.relay']);
    raw = await connect(m.config.RABBITMQ_URL);
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    await raw?.close().catch(() => undefined);
    await m?.close();
    await t?.drop();
  });

  const relay = (batch = 500, rounds = 1, publisher = m.publisher) => {
    const r = new OutboxRelayService(new PgOutboxStore(t.db, t.config), publisher, m.status, {
      OUTBOX_BATCH_SIZE: batch,
      OUTBOX_POLL_MS: 60_000, // so only NOTIFY can wake it quickly
      OUTBOX_RELAY_CONCURRENCY: rounds,
    });
    relays.push(r);
    return r;
  };

  it('is woken by NOTIFY and relays a committed row without waiting for the poll', async () => {
    const r = relay();
    await r.start();
    const started = Date.now();
    const [id] = await writeOutboxRows(t, 1);
    const counts = await countInQueue(raw, m.topology.workQueue('demo.relay'), 1);
    const ms = Date.now() - started;
    expect([...counts.entries()]).toEqual([[id, 1]]);
    expect(ms).toBeLessThan(5000);
    await r.drain(5000); // the row is deleted after the confirm
    console.log(`NOTIFY -> confirmed -> in queue: ${ms} ms`);
  });

  it('a connection killed while its batch is being published fails that round, not the process; the rows stay', async () => {
    const store = new PgOutboxStore(t.db, t.config);
    await t.db.query(`DELETE FROM outbox`);
    await writeOutboxRows(t, 3);
    const round = store.relayBatch(10, async () => {
      // PostgreSQL restarting looks like this to the relay's connection: terminated mid-transaction.
      await t.db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE 'BEGIN; SELECT * FROM outbox%'`,
      );
      await waitFor(
        'the relay connection gone',
        async () =>
          (
            await t.db.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'BEGIN; SELECT * FROM outbox%'`,
            )
          )[0].n === 0,
        5000,
      );
      return { confirmed: [] };
    });
    await expect(round).rejects.toThrow();
    expect((await store.backlog()).count).toBe(3);
    await t.db.query(`DELETE FROM outbox`);
  });

  it('deletes only the rows the broker confirmed, records an attempt and the error on the others, and leaves no transaction open', async () => {
    const store = new PgOutboxStore(t.db, t.config);
    await t.db.query(`DELETE FROM outbox`);
    await writeOutboxRows(t, 4);
    let ids: string[] = [];
    const result = await store.relayBatch(10, async (records) => {
      ids = records.map((r) => r.id);
      return { confirmed: ids.slice(0, 2), error: 'nacked' };
    });
    expect(result).toEqual({ locked: 4, sent: 2 });
    const left = await t.db.query(`SELECT id, publish_attempts, last_error FROM outbox ORDER BY id`);
    expect(left).toEqual(ids.slice(2).map((id) => ({ id, publish_attempts: 1, last_error: 'nacked' })));
    // Only this store's pooled connections: other test files run relays of their own beside this one.
    const pids = (pgPool(t.db) as unknown as { _clients: { processID: number }[] })._clients.map((c) => c.processID);
    const open = await t.db.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state LIKE 'idle in transaction%'`,
      [pids],
    );
    expect(pids.length).toBeGreaterThan(0);
    expect(open[0].n).toBe(0);
    await t.db.query(`DELETE FROM outbox`);
  });

  it.each([
    [2, 'at once, while the first round still waits for its confirm'],
    [1, 'only after the first round'],
  ])('with %i round(s) at once relays a row committed during a slow round %s', async (rounds, _how) => {
    // The broker confirms the first row 1.5 s late (a slow fsync); every later one at once.
    let slowOnce = true;
    const publisher = Object.create(m.publisher) as typeof m.publisher;
    publisher.publishOutbox = async (record) => {
      await m.publisher.publishOutbox(record);
      if (slowOnce) {
        slowOnce = false;
        await new Promise((r) => setTimeout(r, 1500));
      }
    };
    const r = relay(500, rounds, publisher);
    await r.start();
    const q = m.topology.workQueue('demo.relay');
    const [first] = await writeOutboxRows(t, 1);
    const ch = await raw.createChannel();
    await waitFor('the first row published', async () => (await ch.checkQueue(q)).messageCount === 1, 5000);
    await ch.close();
    const started = Date.now();
    const [second] = await writeOutboxRows(t, 1);
    const counts = await countInQueue(raw, q, 2);
    const ms = Date.now() - started;
    expect([...counts.keys()].sort()).toEqual([first, second].sort());
    if (rounds > 1) expect(ms).toBeLessThan(1000);
    else expect(ms).toBeGreaterThan(1000);
    await r.drain(5000);
    console.log(`${rounds} round(s): second row in the queue ${ms} ms after its commit`);
  });

  it('two relays over one outbox publish each row once', async () => {
    const ids = await writeOutboxRows(t, 3000);
    const a = relay(100, 3); // several rounds each, too
    const b = relay(100, 3);
    const started = Date.now();
    await Promise.all([a.start(), b.start()]);
    await a.drain(30_000);
    const counts = await countInQueue(raw, m.topology.workQueue('demo.relay'), ids.length);
    const ms = Date.now() - started;
    expect(counts.size).toBe(ids.length);
    for (const id of ids) expect(counts.get(id)).toBe(1);
    expect(a.stats().sent + b.stats().sent).toBe(ids.length);
    expect(a.stats().failed + b.stats().failed).toBe(0);
    console.log(`two relays: ${ids.length} rows in ${ms} ms, split ${a.stats().sent}/${b.stats().sent}`);
  });
});
