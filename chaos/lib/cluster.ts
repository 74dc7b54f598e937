/** The cluster profile's broker: a private 3-node RabbitMQ cluster (libs/testing) with quorum queues. */
import { type ClusterNode, RabbitmqCluster, waitFor } from '@tasksys/testing';
import type { StackBroker } from './stack';

export class ClusterBroker implements StackBroker {
  private current?: RabbitmqCluster;
  /** How long forming the cluster took (the report shows it). */
  formedMs = 0;

  constructor(private readonly log: (m: string) => void) {}

  get cluster(): RabbitmqCluster {
    if (!this.current) throw new Error('the cluster is not started');
    return this.current;
  }

  get url(): string {
    return this.cluster.url;
  }

  get env(): Record<string, string> {
    return { RABBITMQ_QUEUE_TYPE: 'quorum', RABBITMQ_QUORUM_REPLICAS: '3' };
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    this.current = await RabbitmqCluster.start({ log: (line) => this.log(`cluster: ${line}`) });
    this.formedMs = Date.now() - t0;
  }

  async destroy(): Promise<void> {
    await this.current?.stopAll();
  }

  describe(): string {
    return `RabbitMQ cluster ${this.cluster.id} (${this.cluster.nodes.map((n) => `${n.name} on ${n.amqpPort}`).join(', ')}, formed in ${this.formedMs} ms)`;
  }

  /** Client connections per node name, cluster-wide (a connection's pid names its node). */
  async connectionsByNode(): Promise<Map<string, number>> {
    const out = await this.cluster.ctlAny(['list_connections', 'pid', '--quiet', '--no-table-headers']);
    const counts = new Map<string, number>();
    for (const match of out.matchAll(/<([^@<>\s]+@[^.\s>]+)\./g)) counts.set(match[1], (counts.get(match[1]) ?? 0) + 1);
    return counts;
  }

  /** The node with the most client connections (the one the api and workers are on). */
  async busiestNode(): Promise<ClusterNode> {
    const counts = [...(await this.connectionsByNode()).entries()].sort((a, b) => b[1] - a[1]);
    if (counts.length === 0) throw new Error('no client connections on the cluster');
    return this.cluster.node(counts[0][0]);
  }

  /**
   * Moves a quorum queue's leader off `node`: removing the leader's member makes the others elect a
   * new leader, then the member comes back as a follower (RabbitMQ 3.10 has no transfer command).
   */
  async moveLeaderOff(queue: string, node: ClusterNode): Promise<void> {
    if ((await this.cluster.leaderOf(queue))?.name !== node.name) return;
    await this.cluster.ctlQueues(node.name, ['delete_member', queue, node.name]);
    await waitFor(
      `a leader of ${queue} other than ${node.name}`,
      async () => {
        const leader = await this.cluster.leaderOf(queue);
        return leader !== undefined && leader.name !== node.name;
      },
      30_000,
      500,
    );
    await this.cluster.ctlQueues(node.name, ['add_member', queue, node.name]);
  }

  /** Every node running and a member again (after a node came back). */
  async allRunning(timeoutMs = 120_000): Promise<number> {
    const t0 = Date.now();
    await waitFor(
      'every cluster node running',
      async () => (await this.cluster.runningNodes()).length === this.cluster.nodes.length,
      timeoutMs,
      500,
    );
    return Date.now() - t0;
  }
}
