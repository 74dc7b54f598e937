import { messagingConfigSchema } from '../messaging.config';
import { buildTopology } from './topology';

const cfg = (queueType: 'classic' | 'quorum' = 'classic') =>
  messagingConfigSchema.parse({
    TASKS_NAMESPACE: 'tasks',
    RABBITMQ_QUEUE_TYPE: queueType,
    RETRY_TIERS_MS: '1000,10000',
  });

describe('topology: routing by task type', () => {
  it('gives the api no work queue and no binding on the work exchange: only exchanges and the operators’ queues', () => {
    const api = buildTopology(cfg());
    expect(api.declarations.queues.map((q) => q.name)).toEqual(['tasks.unrouted', 'tasks.dead']);
    expect(api.declarations.bindings.filter((b) => b.exchange === 'tasks')).toEqual([]);
    expect(api.declarations.exchanges.find((x) => x.name === 'tasks')?.arguments).toEqual({
      'alternate-exchange': 'tasks.unrouted',
    });
  });

  it('binds a worker’s queues by the exact routing keys of the types it serves, never #', () => {
    const worker = buildTopology(cfg(), { serves: ['demo.sleep', 'sql.query'] });
    const work = worker.declarations.bindings.filter((b) => b.exchange === 'tasks');
    expect(work).toEqual([
      { queue: 'tasks.work.demo.sleep', exchange: 'tasks', routingKey: 'demo.sleep', arguments: {} },
      { queue: 'tasks.work.sql.query', exchange: 'tasks', routingKey: 'sql.query', arguments: {} },
    ]);
    expect(worker.declarations.bindings.some((b) => b.routingKey.includes('#') || b.routingKey.includes('*'))).toBe(
      false,
    );
    expect(worker.servedQueues()).toEqual(['tasks.work.demo.sleep', 'tasks.work.sql.query']);
    // Classic work queues are priority queues (0-9) and dead-letter to the DLX.
    expect(worker.declarations.queues.find((q) => q.name === 'tasks.work.demo.sleep')?.arguments).toEqual({
      'x-max-priority': 9,
      'x-dead-letter-exchange': 'tasks.dlx',
    });
    expect(worker.declarations.queues.map((q) => q.name)).toEqual(
      expect.arrayContaining(['tasks.retry.1s', 'tasks.retry.10s']),
    );
  });

  it('on quorum queues (no priorities) routes priorities 5-9 to a high-priority queue per type', () => {
    const worker = buildTopology(cfg('quorum'), { serves: ['demo.sleep'] });
    expect(worker.routingKey('demo.sleep', 4)).toBe('demo.sleep');
    expect(worker.routingKey('demo.sleep', 5)).toBe('high:demo.sleep');
    expect(worker.typeOfRoutingKey('high:demo.sleep')).toBe('demo.sleep');
    expect(worker.declarations.bindings.filter((b) => b.exchange === 'tasks')).toEqual([
      { queue: 'tasks.work.demo.sleep.high', exchange: 'tasks', routingKey: 'high:demo.sleep', arguments: {} },
      { queue: 'tasks.work.demo.sleep', exchange: 'tasks', routingKey: 'demo.sleep', arguments: {} },
    ]);
    expect(worker.declarations.queues.find((q) => q.name === 'tasks.work.demo.sleep')?.arguments).toMatchObject({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 20,
    });
    // Classic keeps one queue per type and the type as the key whatever the priority.
    expect(buildTopology(cfg(), { serves: ['demo.sleep'] }).routingKey('demo.sleep', 9)).toBe('demo.sleep');
  });

  it('on quorum queues replicates every queue and dead-letters out of work and retry queues at-least-once', () => {
    const worker = buildTopology({ ...cfg('quorum'), RABBITMQ_QUORUM_REPLICAS: 5 }, { serves: ['demo.sleep'] });
    const byName = new Map(worker.declarations.queues.map((q) => [q.name, q]));
    for (const q of worker.declarations.queues)
      expect(q.arguments).toMatchObject({ 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 5 });
    for (const name of ['tasks.work.demo.sleep', 'tasks.work.demo.sleep.high', 'tasks.retry.1s']) {
      // RabbitMQ honours at-least-once only with reject-publish; without it, it silently falls back to at-most-once.
      expect(byName.get(name)?.arguments).toMatchObject({
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      });
    }
    // Queues with no dead-letter exchange have nothing to dead-letter.
    expect(byName.get('tasks.dead')?.arguments).not.toHaveProperty('x-dead-letter-strategy');
    // What earlier versions declared, so an upgrade keeps their queues (topology-declarer.ts).
    expect(byName.get('tasks.work.demo.sleep')?.legacyArguments).toEqual({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 20,
      'x-dead-letter-exchange': 'tasks.dlx',
    });
    expect(byName.get('tasks.retry.1s')?.legacyArguments).toEqual({
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': 'tasks',
    });
  });

  it('leaves classic queues as they were (no replication, no legacy fallback)', () => {
    const worker = buildTopology(cfg(), { serves: ['demo.sleep'] });
    for (const q of worker.declarations.queues) {
      expect(q.arguments).not.toHaveProperty('x-quorum-initial-group-size');
      expect(q.arguments).not.toHaveProperty('x-dead-letter-strategy');
      expect(q.legacyArguments).toBeUndefined();
    }
  });

  it('refuses a name that is not a task type (it would make routing keys and queue names ambiguous)', () => {
    expect(() => buildTopology(cfg(), { serves: ['high:demo'] })).toThrow(/not a task type name/);
    expect(() => buildTopology(cfg(), { serves: ['demo.#'] })).toThrow(/not a task type name/);
  });
});
