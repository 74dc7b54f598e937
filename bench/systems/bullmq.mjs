// BullMQ 6 on the local Redis: a Queue fed with addBulk, a Worker with a no-op processor.
// Defaults otherwise (completed jobs are kept, as our tasks and pg-boss jobs are).
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';

const connection = { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };
const CONCURRENCY = 100;

export const services = () => ['redis'];
export const describe = () =>
  `BullMQ: Queue.addBulk (1,000 per call, 4 calls in flight), one Worker process, concurrency ${CONCURRENCY}, no-op processor`;

export async function prepare({ id }) {
  return { cfg: { prefix: `bench-${id}`, queue: 'bench' } };
}

export async function cleanup(cfg) {
  const r = new Redis(connection);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${cfg.prefix}:*`, 'COUNT', 1000);
    if (keys.length) await r.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await r.quit();
}

export async function producer(cfg) {
  const q = new Queue(cfg.queue, { connection, prefix: cfg.prefix });
  await q.waitUntilReady();
  return {
    sendBatch: (items) => q.addBulk(items.map((data) => ({ name: 'noop', data }))),
    sendOne: async (item) => (await q.add('noop', item)).id,
    close: () => q.close(),
  };
}

export async function consumer(cfg, onStart, onDone) {
  const w = new Worker(cfg.queue, async (job) => void onStart(job.data), {
    connection: { ...connection, maxRetriesPerRequest: null },
    prefix: cfg.prefix,
    concurrency: CONCURRENCY,
  });
  w.on('completed', () => onDone(1));
  w.on('error', (e) => console.error(e));
  await w.waitUntilReady();
  return { close: () => w.close() };
}
