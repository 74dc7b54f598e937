import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Channel, ChannelModel } from 'amqplib';
import { TopologyMismatchError } from '../messaging.errors';
import { Topology } from './topology';

/** How long start-up waits for the first connection attempt to succeed or fail. */
const STARTUP_DECISION_MS = 10_000;

interface AmqpError extends Error {
  code?: number;
}

/**
 * Runs `fn` on a channel of its own. A 406 closes only that channel: the error listener stops
 * amqplib from escalating it to the whole connection (which golevelup would reconnect in a loop).
 */
async function onThrowawayChannel<T>(model: ChannelModel, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await model.createChannel();
  ch.on('error', () => undefined); // the failed operation's promise carries the error
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined); // already closed by the broker after an error
  }
}

function mismatchOr(err: unknown, kind: TopologyMismatchError['kind'], entity: string): Error {
  const e = err as AmqpError;
  if (e?.code === 406) {
    // amqplib: `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "..."`.
    const broker = /with message "(.*)"/.exec(e.message)?.[1] ?? e.message;
    return new TopologyMismatchError(kind, entity, broker);
  }
  return e instanceof Error ? e : new Error(String(err));
}

/**
 * Declares every exchange, queue and binding of `topology` on `model`, each on a throwaway channel.
 * Rejects with the first `TopologyMismatchError` (all mismatches are in `errors` of the log line
 * the caller writes) or with the first other error (for example the connection dropped).
 */
export async function declareTopology(
  model: ChannelModel,
  topology: Topology,
  /** Called for each queue kept with its earlier version's arguments (`QueueDeclaration.legacyArguments`). */
  onLegacy?: (queue: string, brokerMessage: string) => void,
): Promise<void> {
  const { exchanges, queues, bindings } = topology.declarations;
  const settle = async (steps: Promise<unknown>[]) => {
    const failed = (await Promise.allSettled(steps)).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === 0) return;
    const errors = failed.map((f) => f.reason as Error);
    throw errors.find((e) => e instanceof TopologyMismatchError) ?? errors[0];
  };
  await settle(
    exchanges.map((x) =>
      onThrowawayChannel(model, (ch) =>
        ch.assertExchange(x.name, x.type, { durable: true, arguments: x.arguments }),
      ).catch((err) => Promise.reject(mismatchOr(err, 'exchange', x.name))),
    ),
  );
  await settle(
    queues.map((q) =>
      onThrowawayChannel(model, (ch) => ch.assertQueue(q.name, { durable: true, arguments: q.arguments })).catch(
        (err: unknown) => {
          const mismatch = mismatchOr(err, 'queue', q.name);
          if (!(mismatch instanceof TopologyMismatchError) || !q.legacyArguments) return Promise.reject(mismatch);
          // A queue of an earlier version: equivalent to its old arguments is fine, anything else is a mismatch.
          return onThrowawayChannel(model, (ch) =>
            ch.assertQueue(q.name, { durable: true, arguments: q.legacyArguments }),
          ).then(
            () => onLegacy?.(q.name, mismatch.brokerMessage),
            () => Promise.reject(mismatch),
          );
        },
      ),
    ),
  );
  // Bindings are idempotent; one channel for all of them.
  await onThrowawayChannel(model, async (ch) => {
    for (const b of bindings) {
      await ch.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments).catch((err) => {
        throw mismatchOr(err, 'binding', `${b.exchange} -> ${b.queue}`);
      });
    }
  });
}

/**
 * @internal Declares the topology on every (re)connect of golevelup's connection manager, before
 * any channel's setup (consumers wait on `whenDeclared()`), and remembers whether it succeeded.
 */
@Injectable()
export class TopologyDeclarer implements OnApplicationBootstrap {
  private readonly logger = new Logger(TopologyDeclarer.name);
  private current: Promise<void> | null = null;
  private waiters: Array<() => void> = [];
  private declared = false;
  /** Bumped on every connect and disconnect, so a late result of an old declaration is ignored. */
  private generation = 0;
  private error: Error | null = null;

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly topology: Topology,
  ) {
    const manager = amqp.managedConnection;
    // The manager's `connect` listeners run synchronously in registration order, so `current` is
    // set before any ChannelWrapper finishes creating its channel and runs its setups.
    manager.on('connect', ({ connection }) => this.onConnect(connection as unknown as ChannelModel));
    manager.on('disconnect', () => {
      this.generation++;
      this.declared = false;
      this.current = null;
    });
    // Types say amqplib `Connection`; at runtime it is the promise API's ChannelModel.
    const existing = manager.connection as unknown as ChannelModel | undefined;
    if (existing) this.onConnect(existing);
  }

  /** True while connected and the topology is declared on the current connection. */
  isDeclared(): boolean {
    return this.declared && this.amqp.managedConnection.isConnected();
  }

  /** The last declaration error (a `TopologyMismatchError` on a mismatch), cleared by a success. */
  lastError(): Error | null {
    return this.error;
  }

  /** Resolves once the topology is declared on the current (or next) connection; rejects on mismatch. */
  async whenDeclared(): Promise<void> {
    while (!this.current) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.current;
  }

  /**
   * Start-up: if the broker is reachable, a mismatch stops the app here with a clear error.
   * If it is down, the app starts not ready and declares when the broker comes up.
   */
  async onApplicationBootstrap(): Promise<void> {
    const manager = this.amqp.managedConnection;
    let timer: NodeJS.Timeout | undefined;
    let onFailed: (() => void) | undefined;
    const outcome = await Promise.race([
      this.whenDeclared().then(
        () => 'declared' as const,
        (err: Error) => err,
      ),
      new Promise<'unreachable'>((resolve) => {
        onFailed = () => resolve('unreachable');
        manager.once('connectFailed', onFailed);
        timer = setTimeout(onFailed, STARTUP_DECISION_MS);
      }),
    ]);
    clearTimeout(timer);
    if (onFailed) manager.removeListener('connectFailed', onFailed);
    if (outcome instanceof TopologyMismatchError) throw outcome;
    if (outcome === 'unreachable') this.logger.warn('RabbitMQ unreachable at start-up; not ready until it connects');
  }

  private onConnect(model: ChannelModel): void {
    const generation = ++this.generation;
    const declaration = declareTopology(model, this.topology, (queue, brokerMessage) =>
      this.logger.warn(
        `Queue "${queue}" kept with the arguments of an earlier version (${brokerMessage}); ` +
          'apply the quorum policy of the README ("Single node or cluster") to move it to the new settings',
      ),
    ).then(
      () => {
        if (generation !== this.generation) return;
        this.declared = true;
        this.error = null;
        this.logger.log(`Topology "${this.topology.namespace}" declared`);
      },
      (err: Error) => {
        if (generation === this.generation) {
          this.declared = false;
          this.error = err;
        }
        this.logger.error(
          `Topology "${this.topology.namespace}" not declared; broker reported not ready: ${err.message}`,
        );
        throw err;
      },
    );
    declaration.catch(() => undefined); // logged above; awaited by whoever needs it
    this.current = declaration;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
