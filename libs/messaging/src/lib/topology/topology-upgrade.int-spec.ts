import { type Channel, type ChannelModel, connect } from 'amqplib';
import { testRabbitmqUrl } from '@tasksys/testing';
import { deleteTopology, testMessagingConfig } from '../../testing';
import { TopologyMismatchError } from '../messaging.errors';
import { buildTopology, type Topology } from './topology';
import { declareTopology } from './topology-declarer';

/**
 * Quorum queues declared by an earlier version (type and delivery limit only) meet this version's
 * arguments (replication factor, at-least-once dead-lettering): RabbitMQ refuses the redeclaration
 * (406), so an upgrade must keep the old queues running, not crash-loop nor delete them.
 */
describe('topology upgrade to replicated, at-least-once quorum queues (real RabbitMQ)', () => {
  let raw: ChannelModel;
  const made: Topology[] = [];

  beforeAll(async () => {
    raw = await connect(testRabbitmqUrl());
  });

  afterAll(async () => {
    await raw?.close().catch(() => undefined);
    for (const t of made) await deleteTopology(t);
  });

  function quorumTopology(): Topology {
    const t = buildTopology(testMessagingConfig({ RABBITMQ_QUEUE_TYPE: 'quorum' }), { serves: ['demo.sleep'] });
    made.push(t);
    return t;
  }

  /** Declares every queue as the earlier version did (its legacyArguments), and the rest as now. */
  async function declareAsEarlierVersion(t: Topology): Promise<void> {
    const earlier = {
      ...t,
      declarations: {
        ...t.declarations,
        queues: t.declarations.queues.map((q) => ({ ...q, arguments: q.legacyArguments ?? q.arguments })),
      },
    } as Topology;
    await declareTopology(raw, earlier);
  }

  /** Whether the broker holds `queue` with exactly `args` (a redeclaration with others is refused). */
  async function holds(queue: string, args: Record<string, unknown>): Promise<boolean> {
    const ch: Channel = await raw.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.assertQueue(queue, { durable: true, arguments: args });
      return true;
    } catch {
      return false;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  it('a fresh namespace gets the new arguments, with no legacy fallback', async () => {
    const t = quorumTopology();
    const kept: string[] = [];
    await declareTopology(raw, t, (queue) => kept.push(queue));
    expect(kept).toEqual([]);
    const work = t.declarations.queues.find((q) => q.name === t.workQueue('demo.sleep'));
    expect(await holds(work?.name ?? '', work?.arguments ?? {})).toBe(true);
    expect(await holds(work?.name ?? '', work?.legacyArguments ?? {})).toBe(false);
  });

  it("keeps an earlier version's queues on their arguments, reporting each, instead of failing start-up", async () => {
    const t = quorumTopology();
    await declareAsEarlierVersion(t);
    const kept: Array<{ queue: string; broker: string }> = [];
    await expect(declareTopology(raw, t, (queue, broker) => kept.push({ queue, broker }))).resolves.toBeUndefined();
    expect(kept.map((k) => k.queue).sort()).toEqual(t.declarations.queues.map((q) => q.name).sort());
    expect(kept.find((k) => k.queue === t.workQueue('demo.sleep'))?.broker).toMatch(/inequivalent arg/);
    // Untouched: still the earlier arguments (and its messages), never deleted and re-created.
    const work = t.declarations.queues.find((q) => q.name === t.workQueue('demo.sleep'));
    expect(await holds(work?.name ?? '', work?.legacyArguments ?? {})).toBe(true);
  });

  it('still refuses a real mismatch (a classic queue where a quorum one is declared)', async () => {
    const t = quorumTopology();
    const classic = buildTopology(
      { ...testMessagingConfig(), TASKS_NAMESPACE: t.namespace, RABBITMQ_QUEUE_TYPE: 'classic' },
      { serves: ['demo.sleep'] },
    );
    await declareTopology(raw, classic);
    const err = await declareTopology(raw, t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopologyMismatchError);
    expect((err as TopologyMismatchError).kind).toBe('queue');
  });
});
