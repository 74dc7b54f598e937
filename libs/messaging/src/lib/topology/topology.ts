import type { MessagingConfig } from '../messaging.config';
import { HEADERS } from '../messaging.constants';

export type ExchangeType = 'topic' | 'fanout' | 'headers' | 'direct';
export type AmqpArguments = Record<string, string | number | boolean>;

export interface ExchangeDeclaration {
  name: string;
  type: ExchangeType;
  arguments: AmqpArguments;
  purpose: string;
}

export interface QueueDeclaration {
  name: string;
  arguments: AmqpArguments;
  purpose: string;
}

export interface BindingDeclaration {
  queue: string;
  exchange: string;
  routingKey: string;
  arguments: AmqpArguments;
}

export interface RetryTier {
  /** Queue name, `<ns>.retry.<label>`. */
  name: string;
  delayMs: number;
  /** Human label, also the value of the `retry-tier` header that routes into this queue. */
  label: string;
}

/** Logical exchange roles used in outbox rows; the topology maps them to namespaced names. */
export type ExchangeRole = 'work' | 'control';

/**
 * Every exchange, queue, argument and binding of the system, as data. All durable; messages
 * are published persistent. See the README for the operator's table.
 *
 * Inject it by class: `constructor(private readonly topology: Topology)`.
 */
export class Topology {
  constructor(
    readonly namespace: string,
    readonly exchanges: { work: string; unrouted: string; retry: string; dead: string; control: string },
    readonly queues: { work: string; unrouted: string; dead: string; retry: RetryTier[] },
    readonly declarations: {
      exchanges: ExchangeDeclaration[];
      queues: QueueDeclaration[];
      bindings: BindingDeclaration[];
    },
    /**
     * Quorum queues count every requeue toward `x-delivery-limit` and dead-letter the message past it,
     * so whoever hands a delivery back publishes a fresh copy instead (see the executor).
     */
    readonly queueType: 'classic' | 'quorum' = 'classic',
  ) {}

  /** The namespaced exchange of a logical role, or undefined for an unknown role. */
  exchangeForRole(role: string): string | undefined {
    if (role === 'work') return this.exchanges.work;
    if (role === 'control') return this.exchanges.control;
    return undefined;
  }
}

/** `1000` -> `1s`, `60000` -> `1m`, `300` -> `300ms`. */
export function tierLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function buildTopology(
  cfg: Pick<MessagingConfig, 'TASKS_NAMESPACE' | 'RABBITMQ_QUEUE_TYPE' | 'RABBITMQ_DELIVERY_LIMIT' | 'RETRY_TIERS_MS'>,
): Topology {
  const ns = cfg.TASKS_NAMESPACE;
  const exchanges = {
    work: ns,
    unrouted: `${ns}.unrouted`,
    retry: `${ns}.retry`,
    dead: `${ns}.dlx`,
    control: `${ns}.control`,
  };
  const retry: RetryTier[] = cfg.RETRY_TIERS_MS.map((delayMs) => {
    const label = tierLabel(delayMs);
    return { name: `${ns}.retry.${label}`, delayMs, label };
  });
  const queues = { work: `${ns}.work`, unrouted: `${ns}.unrouted`, dead: `${ns}.dead`, retry };

  const quorum = cfg.RABBITMQ_QUEUE_TYPE === 'quorum';
  // Classic is the broker default; leaving the argument out keeps queues declared before this
  // setting existed equivalent.
  const queueType: AmqpArguments = quorum ? { 'x-queue-type': 'quorum' } : {};

  return new Topology(ns, exchanges, queues, {
    exchanges: [
      {
        name: exchanges.work,
        type: 'topic',
        arguments: { 'alternate-exchange': exchanges.unrouted },
        purpose: 'work; routing key = task type; unroutable messages go to the alternate exchange',
      },
      { name: exchanges.unrouted, type: 'fanout', arguments: {}, purpose: 'alternate exchange of the work exchange' },
      {
        name: exchanges.retry,
        // The reference design says direct. Headers instead: a message dead-lettered out of a tier queue keeps
        // the routing key it was published with and must come back to the work exchange under its
        // task type. With a direct exchange the key would have to name the tier; here the tier is
        // chosen by the `retry-tier` header and the routing key stays the task type.
        type: 'headers',
        arguments: {},
        purpose: 'delayed retries; header `retry-tier` selects the tier queue',
      },
      { name: exchanges.dead, type: 'fanout', arguments: {}, purpose: 'dead letters, with reason headers' },
      { name: exchanges.control, type: 'fanout', arguments: {}, purpose: 'cancel signals; each worker binds its own queue' },
    ],
    queues: [
      {
        name: queues.work,
        arguments: {
          ...queueType,
          ...(quorum ? { 'x-delivery-limit': cfg.RABBITMQ_DELIVERY_LIMIT } : {}),
          'x-dead-letter-exchange': exchanges.dead,
        },
        purpose: 'workers consume here',
      },
      { name: queues.unrouted, arguments: { ...queueType }, purpose: 'messages no binding matched; redrive by hand' },
      { name: queues.dead, arguments: { ...queueType }, purpose: 'dead letters' },
      ...retry.map((tier) => ({
        name: tier.name,
        // No consumers: a message waits out its per-message TTL (one TTL per queue, so no
        // head-of-line blocking), then dead-letters back to the work exchange.
        arguments: { ...queueType, 'x-dead-letter-exchange': exchanges.work },
        purpose: `retry after ${tier.label}`,
      })),
    ],
    bindings: [
      { queue: queues.work, exchange: exchanges.work, routingKey: '#', arguments: {} },
      { queue: queues.unrouted, exchange: exchanges.unrouted, routingKey: '', arguments: {} },
      { queue: queues.dead, exchange: exchanges.dead, routingKey: '', arguments: {} },
      ...retry.map((tier) => ({
        queue: tier.name,
        exchange: exchanges.retry,
        routingKey: '',
        arguments: { 'x-match': 'all', [HEADERS.retryTier]: tier.label },
      })),
    ],
  }, cfg.RABBITMQ_QUEUE_TYPE);
}
