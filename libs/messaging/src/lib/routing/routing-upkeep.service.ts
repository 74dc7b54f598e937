import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable, Logger } from '@nestjs/common';
import type { ChannelModel } from 'amqplib';
import { MAX_BROWSE } from '../admin/queue-browser';
import { UnroutedRedriver } from '../admin/unrouted-redriver';
import { Topology } from '../topology/topology';

/** How often a worker looks for unrouted messages of its types and for the legacy work queue. */
const UPKEEP_INTERVAL_MS = 2000;

/**
 * A worker's side of routing by type, run right after it bound its queues and then every two
 * seconds (cheap: a few idempotent declares and passive checks when there is nothing to do):
 * - its queues and their bindings are declared again, in case they vanished while it stayed connected;
 * - messages of the types it serves that reached `<ns>.unrouted` before any worker served them are
 *   redriven to their queues (confirmed republish, then removed from unrouted);
 * - the single `<ns>.work` queue of versions before per-type routing is unbound from the work
 *   exchange, drained into the per-type queues (or unrouted) the same way, and deleted once empty.
 * Several workers doing it at once is harmless: browsing holds each message on one channel at a time.
 */
@Injectable()
export class RoutingUpkeep {
  private readonly logger = new Logger(RoutingUpkeep.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly topology: Topology,
    private readonly redriver: UnroutedRedriver,
  ) {}

  start(): void {
    if (this.timer || this.topology.served.length === 0) return;
    const tick = () => {
      if (!this.running) this.running = this.runOnce().finally(() => (this.running = null));
    };
    tick();
    this.timer = setInterval(tick, UPKEEP_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One round; never throws (a broker away now is tried again next round). */
  async runOnce(): Promise<void> {
    try {
      await this.assertServedQueues();
      await this.drainLegacyQueue();
      if (((await this.messagesIn(this.topology.queues.unrouted)) ?? 0) > 0) {
        const r = await this.redriver.redrive({ types: this.topology.served, limit: MAX_BROWSE });
        if (r.redriven > 0)
          this.logger.log(
            `redrove ${r.redriven} unrouted message(s) of ${this.topology.served.join(', ')} to their queues`,
          );
        if (r.error) this.logger.warn(`unrouted redrive stopped: ${r.error}`);
      }
    } catch (err) {
      this.logger.warn(`routing upkeep failed (${(err as Error).message}); trying again in ${UPKEEP_INTERVAL_MS} ms`);
    }
  }

  /**
   * The queues and bindings of the served types, declared again (idempotent): one deleted by hand, or
   * lost with a broker's data while this worker stayed connected, comes back within a round instead
   * of its messages circling through unrouted until the next reconnect.
   */
  private async assertServedQueues(): Promise<void> {
    const served = new Set(this.topology.servedQueues());
    const ch = await this.model().createChannel();
    ch.on('error', () => undefined); // a mismatch (406) closes only this channel; the error is logged below
    try {
      for (const q of this.topology.declarations.queues.filter((d) => served.has(d.name))) {
        await ch.assertQueue(q.name, { durable: true, arguments: q.arguments });
      }
      for (const b of this.topology.declarations.bindings.filter((d) => served.has(d.queue))) {
        await ch.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  private async drainLegacyQueue(): Promise<void> {
    const legacy = this.topology.queues.legacyWork;
    if ((await this.figures(legacy)) === null) return; // gone (or never there)
    const ch = await this.model().createChannel();
    ch.on('error', () => undefined);
    try {
      // No new messages flow in; then what is there moves to the per-type queues.
      await ch.unbindQueue(legacy, this.topology.exchanges.work, '#');
      const r = await this.redriver.republishFrom(legacy, { limit: MAX_BROWSE });
      if (r.redriven > 0)
        this.logger.log(`moved ${r.redriven} message(s) from the legacy queue ${legacy} to the per-type queues`);
      if (r.error) throw new Error(r.error);
    } finally {
      await ch.close().catch(() => undefined);
    }
    // Deleted only when nothing is in it and nobody consumes it: a worker of the old version may
    // still hold deliveries it will hand back (a requeue into a deleted queue is lost). Not with
    // `if-empty`: quorum queues refuse it by closing the whole connection, and on classic queues it
    // counts only ready messages, not the ones consumers hold.
    const now = await this.figures(legacy);
    if (now === null || now.messages > 0 || now.consumers > 0) return;
    const del = await this.model().createChannel();
    del.on('error', () => undefined);
    try {
      await del.deleteQueue(legacy, this.topology.queueType === 'quorum' ? {} : { ifEmpty: true, ifUnused: true });
      this.logger.log(`legacy work queue ${legacy} drained and deleted`);
    } finally {
      await del.close().catch(() => undefined);
    }
  }

  /** Ready messages in `queue`, or null when it does not exist. */
  private async messagesIn(queue: string): Promise<number | null> {
    return (await this.figures(queue))?.messages ?? null;
  }

  /** Ready messages and consumers of `queue`, or null when it does not exist. */
  private async figures(queue: string): Promise<{ messages: number; consumers: number } | null> {
    const ch = await this.model().createChannel();
    ch.on('error', () => undefined); // a missing queue closes this channel with 404
    try {
      const q = await ch.checkQueue(queue);
      return { messages: q.messageCount, consumers: q.consumerCount };
    } catch (err) {
      if ((err as { code?: number }).code === 404) return null;
      throw err;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  private model(): ChannelModel {
    const model = this.amqp.managedConnection.connection as unknown as ChannelModel | undefined;
    if (!model) throw new Error('not connected to RabbitMQ');
    return model;
  }
}
