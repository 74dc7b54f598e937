import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable, Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { type ControlMessage, parseControlMessage } from '../task-message';
import { Topology } from '../topology/topology';
import { TopologyDeclarer } from '../topology/topology-declarer';

/**
 * One message, bound to the raw channel that delivered it. Settle it exactly once. If that channel
 * is gone (reconnect, channel error) the calls are no-ops with a warning: the broker has already
 * put the message back and redelivers it.
 */
export interface Delivery {
  message: ConsumeMessage;
  /** Done with it (see the ack rule, docs/ARCHITECTURE.md). */
  ack(): void;
  /** Reject without requeue: the broker dead-letters it through the queue's DLX. */
  reject(): void;
  /** Give it back to the queue (shutdown with work unfinished). */
  requeue(): void;
}

export interface Consumer {
  /** basic.cancel: no new deliveries; in-flight deliveries can still be settled. Never resubscribes after this. */
  stop(): Promise<void>;
  /**
   * Changes how many unacked deliveries the broker may send (basic.qos), now and after every
   * reconnect. Only where the limit is channel-wide (classic queues); elsewhere the limit set at the
   * start stays. Calls are coalesced: at most one basic.qos is in flight, the latest value wins.
   * Resolves once the broker has this value (or a later one); at once where it cannot follow, or
   * while no channel is open (the next one starts with the latest value). Never rejects.
   */
  setPrefetch(prefetch: number): Promise<void>;
  /** `stop()`, then closes the channel (unsettled deliveries go back to the queue). */
  close(): Promise<void>;
}

export interface ConsumerOptions {
  /** Unacked deliveries the broker sends this consumer at most. */
  prefetch: number;
  /** Called for every delivery; must not throw (errors are logged, the delivery stays unsettled). */
  onMessage: (delivery: Delivery) => void;
}

interface ChannelState {
  open: boolean;
}

const RESUBSCRIBE_DELAY_MS = 1000;
const RECREATE_MAX_DELAY_MS = 30_000;

/**
 * Consuming infrastructure for the worker. Each consumer has its own managed channel (consuming one
 * or several queues), so it comes
 * back after every reconnect (once the topology is declared), after a server-side cancel, and after
 * its channel alone was closed by the broker (for example `consumer_timeout`).
 */
@Injectable()
export class ConsumerFactory {
  private readonly logger = new Logger(ConsumerFactory.name);

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly topology: Topology,
    private readonly declarer: TopologyDeclarer,
  ) {}

  /** Consumes `queue` (manual ack) with `prefetch`; see `Delivery` for settling. */
  createConsumer(queue: string, options: ConsumerOptions): Consumer {
    return this.createWorkConsumer([queue], options);
  }

  /**
   * Consumes several queues (a worker's task types) on one channel, with one limit of unacked
   * deliveries across them: on classic queues a channel-wide prefetch (`global`), exact. Quorum
   * queues refuse a channel-wide prefetch, so there the limit is split evenly, at least one each.
   */
  createWorkConsumer(queues: readonly string[], { prefetch, onMessage }: ConsumerOptions): Consumer {
    const channelWide = this.topology.queueType !== 'quorum';
    let wanted = prefetch;
    let sent = prefetch;
    let sending = false;
    let channel: Channel | null = null;
    /** Callers of setPrefetch waiting for the broker to have their value. */
    const applied: (() => void)[] = [];
    const settle = () => {
      for (const resolve of applied.splice(0)) resolve();
    };
    const consumer = this.subscribe(
      `consumer:${queues.join(',')}`,
      async (ch) => {
        channel = ch;
        if (!channelWide) await ch.prefetch(Math.max(1, Math.floor(prefetch / Math.max(1, queues.length))), false);
        else await ch.prefetch((sent = wanted), true);
        settle();
        return [...queues];
      },
      (msg, ch, state) => onMessage(this.delivery(msg, ch, state)),
      { noAck: false },
    );
    const send = () => {
      if (sending) return; // its completion sends the latest value
      if (!channelWide || !channel || wanted === sent) return settle();
      const ch = channel;
      const value = wanted;
      sending = true;
      // Through a promise: amqplib throws at once on a closed channel.
      Promise.resolve()
        .then(() => ch.prefetch(value, true))
        .then(
          () => {
            if (channel === ch) sent = value; // a successor channel set its own value
            sending = false;
            send(); // the latest value, if it changed meanwhile; else the waiting callers are told
          },
          () => {
            // The channel is gone: never again on it (a retry there fails at once, in a loop of
            // microtasks that starves the event loop). Its successor starts with `wanted`.
            sending = false;
            if (channel === ch) channel = null;
            send();
          },
        );
    };
    return {
      ...consumer,
      setPrefetch: (n: number) =>
        new Promise<void>((resolve) => {
          wanted = Math.max(1, Math.floor(n));
          applied.push(resolve);
          send();
        }),
      close: async () => {
        await consumer.close();
        settle();
      },
    };
  }

  /**
   * Control messages (cancel signals) on an exclusive, auto-delete, server-named queue bound to the
   * control exchange; a new queue after every reconnect. Malformed messages are logged and dropped.
   */
  subscribeControl(onMessage: (msg: ControlMessage) => void): Consumer {
    return this.subscribe(
      'control',
      async (ch) => {
        const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
        await ch.bindQueue(queue, this.topology.exchanges.control, '');
        return [queue];
      },
      (msg) => {
        const parsed = parseControlMessage(msg.content);
        if (parsed) onMessage(parsed);
        else this.logger.warn(`Dropped a malformed control message ${String(msg.properties.messageId)}`);
      },
      // A lost control message is caught by the next heartbeat (docs/ARCHITECTURE.md, "the ack rule").
      { noAck: true },
    );
  }

  private subscribe(
    name: string,
    prepare: (ch: Channel) => Promise<string[]>,
    handle: (msg: ConsumeMessage, ch: Channel, state: ChannelState) => void,
    options: Options.Consume,
  ): Consumer {
    let stopped = false;
    /** The channel consuming now and its consumer tag per queue. */
    let active: { ch: Channel; tags: Map<string, string>; state: ChannelState } | null = null;
    let current: Channel | null = null;
    let wrapper: ChannelWrapper;
    let timer: NodeJS.Timeout | undefined;
    const resubscribes = new Set<NodeJS.Timeout>();
    let recreateDelay = RESUBSCRIBE_DELAY_MS;

    const consumeOne = async (
      ch: Channel,
      state: ChannelState,
      tags: Map<string, string>,
      queue: string,
    ): Promise<void> => {
      if (stopped || !state.open) return;
      const { consumerTag } = await ch.consume(
        queue,
        (msg) => {
          if (msg === null) {
            // Cancelled by the server (queue deleted, node lost, consumer timeout on quorum queues).
            tags.delete(queue);
            if (stopped) return;
            this.logger.warn(`${name}: consumer of ${queue} cancelled by the broker; subscribing again`);
            const t = setTimeout(() => {
              resubscribes.delete(t);
              consumeOne(ch, state, tags, queue).catch((err: Error) =>
                this.logger.error(`${name}: resubscribe to ${queue} failed: ${err.message}`),
              );
            }, RESUBSCRIBE_DELAY_MS);
            resubscribes.add(t);
            return;
          }
          try {
            handle(msg, ch, state);
          } catch (err) {
            this.logger.error(`${name}: onMessage threw: ${(err as Error).message}`);
          }
        },
        options,
      );
      if (stopped || !state.open) {
        // stop() ran while basic.consume was in flight: cancel what it just created.
        await ch.cancel(consumerTag).catch(() => undefined);
        return;
      }
      tags.set(queue, consumerTag);
    };

    const start = async (ch: Channel, state: ChannelState): Promise<void> => {
      if (stopped || !state.open) return;
      const queues = await prepare(ch);
      const tags = new Map<string, string>();
      active = { ch, tags, state };
      for (const queue of queues) await consumeOne(ch, state, tags, queue);
      recreateDelay = RESUBSCRIBE_DELAY_MS;
    };

    const setup = async (raw: Channel): Promise<void> => {
      const state: ChannelState = { open: true };
      current = raw;
      // Without a listener amqplib escalates a channel error to the whole connection.
      raw.on('error', (err: Error) => this.logger.warn(`${name}: channel error: ${err.message}`));
      raw.on('close', () => {
        state.open = false;
        if (active?.ch === raw) active = null;
        if (!stopped) scheduleRecreate(raw);
      });
      await this.declarer.whenDeclared();
      await start(raw, state);
    };

    // The connection manager only replaces a channel on reconnect. If the broker closed just this
    // channel and no new one arrived, replace the wrapper ourselves.
    const scheduleRecreate = (dead: Channel) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (stopped || current !== dead || !this.amqp.managedConnection.isConnected()) return;
        this.logger.warn(`${name}: channel closed by the broker; opening a new one`);
        const old = wrapper;
        wrapper = open();
        void old.close().catch(() => undefined);
      }, recreateDelay);
      recreateDelay = Math.min(recreateDelay * 2, RECREATE_MAX_DELAY_MS);
    };

    const open = (): ChannelWrapper => {
      const w = this.amqp.managedConnection.createChannel({ name, confirm: false, setup });
      w.on('error', (err: Error) => this.logger.error(`${name}: setup failed: ${err.message}`));
      return w;
    };
    wrapper = open();

    const stop = async (): Promise<void> => {
      stopped = true;
      clearTimeout(timer);
      for (const t of resubscribes) clearTimeout(t);
      resubscribes.clear();
      const a = active;
      active = null;
      if (!a?.state.open) return;
      for (const tag of a.tags.values())
        await a.ch.cancel(tag).catch((err: Error) => this.logger.warn(`${name}: cancel: ${err.message}`));
    };
    return {
      stop,
      close: async () => {
        await stop();
        await wrapper.close().catch(() => undefined);
      },
      setPrefetch: () => Promise.resolve(),
    };
  }

  private delivery(message: ConsumeMessage, ch: Channel, state: ChannelState): Delivery {
    let settled = false;
    const settle = (what: 'ack' | 'reject' | 'requeue') => {
      const id = String(message.properties.messageId);
      if (settled) {
        // A second settle would close the channel (unknown delivery tag).
        this.logger.warn(`Delivery ${id} already settled; ignoring ${what}`);
        return;
      }
      settled = true;
      if (!state.open) {
        this.logger.warn(`Delivery ${id}: channel gone before ${what}; the broker redelivers it`);
        return;
      }
      try {
        if (what === 'ack') ch.ack(message);
        else ch.nack(message, false, what === 'requeue');
      } catch (err) {
        this.logger.warn(`Delivery ${id}: ${what} failed (${(err as Error).message}); the broker redelivers it`);
      }
    };
    return { message, ack: () => settle('ack'), reject: () => settle('reject'), requeue: () => settle('requeue') };
  }
}
