// Raw amqplib: a durable queue, persistent messages, publisher confirms (pipelined, each send
// waits for its own confirm), consumers with manual ack and a prefetch. With cfg.pg, the "naive
// durable" design: one INSERT per message before publishing, and two single-row UPDATEs
// ("start", "finish") per message in the consumer, each its own commit.
import amqp from 'amqplib';
import { once } from 'node:events';
import pg from 'pg';

const URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks';

export const services = (opts) => (opts.pg ? ['rabbitmq', 'postgres'] : ['rabbitmq']);
export const describe = (opts) =>
  opts.pg
    ? 'amqplib + PostgreSQL per message: INSERT at publish, UPDATE start + UPDATE finish in the consumer (autocommit each), prefetch 100, 2 x 20 pg connections'
    : 'amqplib: durable queue, persistent messages, confirm channel (all of a 1,000-message batch in flight, 4 batches in flight), manual ack, prefetch 200';

export async function prepare({ id, opts }) {
  const cfg = { queue: `bench-${id}.amqp`, schema: opts.pg ? `bench_${id}` : undefined, prefetch: opts.pg ? 100 : 200 };
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  await ch.assertQueue(cfg.queue, { durable: true });
  await conn.close();
  if (cfg.schema) {
    const c = new pg.Client(PG);
    await c.connect();
    await c.query(`CREATE SCHEMA ${cfg.schema}`);
    await c.query(`CREATE TABLE ${cfg.schema}.jobs (id bigserial PRIMARY KEY, status text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, finished_at timestamptz)`);
    await c.end();
  }
  return { cfg };
}

export async function cleanup(cfg) {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  await ch.deleteQueue(cfg.queue);
  await conn.close();
  if (cfg.schema) {
    const c = new pg.Client(PG);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${cfg.schema} CASCADE`);
    await c.end();
  }
}

export async function producer(cfg) {
  const conn = await amqp.connect(URL);
  const ch = await conn.createConfirmChannel();
  const pool = cfg.schema ? new pg.Pool({ connectionString: PG, max: 20 }) : undefined;
  const publish = async (item) => {
    const body = { ...item };
    if (pool)
      body.id = (await pool.query(`INSERT INTO ${cfg.schema}.jobs (status) VALUES ('queued') RETURNING id`)).rows[0].id;
    let ok = false;
    const confirmed = new Promise((res, rej) => {
      ok = ch.sendToQueue(cfg.queue, Buffer.from(JSON.stringify(body)), { persistent: true }, (err) =>
        err ? rej(err) : res(),
      );
    });
    if (!ok) await once(ch, 'drain');
    await confirmed;
  };
  return {
    sendBatch: (items) => Promise.all(items.map(publish)),
    sendOne: (item) => publish(item),
    close: async () => {
      await conn.close();
      await pool?.end();
    },
  };
}

export async function consumer(cfg, onStart, onDone) {
  const conn = await amqp.connect(URL);
  const ch = await conn.createChannel();
  await ch.prefetch(cfg.prefetch);
  const pool = cfg.schema ? new pg.Pool({ connectionString: PG, max: 20 }) : undefined;
  await ch.consume(cfg.queue, async (msg) => {
    const item = JSON.parse(msg.content.toString());
    onStart(item);
    if (pool) {
      await pool.query(`UPDATE ${cfg.schema}.jobs SET status = 'running', started_at = now() WHERE id = $1`, [item.id]);
      await pool.query(`UPDATE ${cfg.schema}.jobs SET status = 'done', finished_at = now() WHERE id = $1`, [item.id]);
    }
    ch.ack(msg);
    onDone(1);
  });
  return {
    close: async () => {
      await conn.close();
      await pool?.end();
    },
  };
}
