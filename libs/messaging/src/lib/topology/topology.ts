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
  /**
   * The arguments earlier versions declared this queue with, accepted (with a warning) when the broker
   * refuses `arguments` for an existing queue: an upgrade keeps running, and the operator moves the queue
   * to the new settings with a policy (README, "Single node or cluster"), never by deleting it.
   */
  legacyArguments?: AmqpArguments;
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

/** @internal Logical exchange roles used in outbox rows; the topology maps them to namespaced names. */
export type ExchangeRole = 'work' | 'control';

/** @internal Priorities from this one up travel in a type's high-priority queue on quorum queues (which have no priorities). */
export const HIGH_PRIORITY = 5;
/** @internal Priorities 0-9, 9 first (classic queues: `x-max-priority`). */
export const MAX_PRIORITY = 9;
/** Task type names (so a routing key and a queue name built from one can never collide). */
export const TASK_TYPE_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

export interface TopologyOptions {
  /**
   * Task types whose work queues and bindings this process declares: a worker's served types. The
   * api serves none: a type no worker has ever served has no binding, so its messages go to the
   * alternate exchange.
   */
  serves?: readonly string[];
}

/**
 * Every exchange, queue, argument and binding of the system, as data. All durable; messages
 * are published persistent. See the README for the operator's table.
 *
 * Work queues are per task type (`<ns>.work.<type>`), bound by the type's exact routing key and
 * declared only by the workers that serve the type. Inject it by class: `constructor(private readonly topology: Topology)`.
 */
export class Topology {
  constructor(
    readonly namespace: string,
    readonly exchanges: { work: string; unrouted: string; retry: string; dead: string; control: string },
    readonly queues: {
      unrouted: string;
      dead: string;
      retry: RetryTier[];
      /** The single work queue of versions before per-type routing, drained and removed by workers. */
      legacyWork: string;
    },
    readonly declarations: {
      exchanges: ExchangeDeclaration[];
      queues: QueueDeclaration[];
      bindings: BindingDeclaration[];
    },
    /**
     * Quorum queues count every requeue toward `x-delivery-limit` and dead-letter the message past it,
     * so whoever hands a delivery back publishes a fresh copy instead (see the ack rule); and they have
     * no priorities, so high priorities get a queue of their own.
     */
    readonly queueType: 'classic' | 'quorum' = 'classic',
    /** The task types whose queues this process declared (a worker's); empty for the api. */
    readonly served: readonly string[] = [],
  ) {}

  /** The namespaced exchange of a logical role, or undefined for an unknown role. */
  exchangeForRole(role: string): string | undefined {
    if (role === 'work') return this.exchanges.work;
    if (role === 'control') return this.exchanges.control;
    return undefined;
  }

  /** The work queue of a task type. */
  workQueue(type: string): string {
    return `${this.namespace}.work.${type}`;
  }

  /** Quorum queues only: the queue of a type's priorities >= HIGH_PRIORITY. */
  highPriorityQueue(type: string): string {
    return `${this.namespace}.work.${type}.high`;
  }

  /** Every queue a type's work waits in, the one to consume first first. */
  queuesOf(type: string): string[] {
    return this.queueType === 'quorum' ? [this.highPriorityQueue(type), this.workQueue(type)] : [this.workQueue(type)];
  }

  /** Every work queue of the types this process serves. */
  servedQueues(): string[] {
    return this.served.flatMap((type) => this.queuesOf(type));
  }

  /**
   * The routing key of a task's work message: its type; on quorum queues, high priorities carry a
   * `high:` prefix that binds them to the type's high-priority queue (type names contain no colon).
   */
  routingKey(type: string, priority = 0): string {
    return this.queueType === 'quorum' && priority >= HIGH_PRIORITY ? `high:${type}` : type;
  }

  /** The task type a work routing key names (the inverse of `routingKey`). */
  typeOfRoutingKey(routingKey: string): string {
    return routingKey.startsWith('high:') ? routingKey.slice('high:'.length) : routingKey;
  }
}

/** @internal `1000` -> `1s`, `60000` -> `1m`, `300` -> `300ms`. */
export function tierLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function buildTopology(
  cfg: Pick<MessagingConfig, 'TASKS_NAMESPACE' | 'RABBITMQ_QUEUE_TYPE' | 'RABBITMQ_DELIVERY_LIMIT' | 'RETRY_TIERS_MS'> &
    Partial<Pick<MessagingConfig, 'RABBITMQ_QUORUM_REPLICAS'>>,
  options: TopologyOptions = {},
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
  const queues = { unrouted: `${ns}.unrouted`, dead: `${ns}.dead`, retry, legacyWork: `${ns}.work` };

  const quorum = cfg.RABBITMQ_QUEUE_TYPE === 'quorum';
  // Classic is the broker default; leaving the argument out keeps queues declared before this
  // setting existed equivalent.
  const queueType: AmqpArguments = quorum
    ? { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': cfg.RABBITMQ_QUORUM_REPLICAS ?? 3 }
    : {};
  // Versions before the replication factor was set declared quorum queues with the type alone.
  const legacyQueueType: AmqpArguments = quorum ? { 'x-queue-type': 'quorum' } : {};
  // Quorum queues only (RabbitMQ 3.10+): a message dead-lettered out of a work queue (delivery limit,
  // reject) or a retry tier (TTL expired) is kept until the target queues confirm it, so a node lost
  // mid-way cannot drop it. The broker requires overflow reject-publish for it; with no max-length
  // set, nothing overflows, and a publish refused anyway is a nack the relay retries.
  const atLeastOnce: AmqpArguments = quorum
    ? { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }
    : {};
  const serves = [...new Set(options.serves ?? [])];
  for (const type of serves) {
    if (!TASK_TYPE_NAME.test(type)) throw new Error(`not a task type name: ${JSON.stringify(type)}`);
  }
  const workArguments: AmqpArguments = {
    ...queueType,
    ...(quorum ? { 'x-delivery-limit': cfg.RABBITMQ_DELIVERY_LIMIT } : { 'x-max-priority': MAX_PRIORITY }),
    'x-dead-letter-exchange': exchanges.dead,
    ...atLeastOnce,
  };
  const legacyWorkArguments: AmqpArguments = {
    ...legacyQueueType,
    'x-delivery-limit': cfg.RABBITMQ_DELIVERY_LIMIT,
    'x-dead-letter-exchange': exchanges.dead,
  };
  const legacy = (args: AmqpArguments) => (quorum ? { legacyArguments: args } : {});
  const draft = new Topology(
    ns,
    exchanges,
    queues,
    { exchanges: [], queues: [], bindings: [] },
    cfg.RABBITMQ_QUEUE_TYPE,
    serves,
  );
  const work = serves.flatMap((type) =>
    (quorum ? [HIGH_PRIORITY, 0] : [0]).map((priority) => ({
      type,
      queue: priority >= HIGH_PRIORITY ? draft.highPriorityQueue(type) : draft.workQueue(type),
      routingKey: draft.routingKey(type, priority),
      high: priority >= HIGH_PRIORITY,
    })),
  );

  return new Topology(
    ns,
    exchanges,
    queues,
    {
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
        {
          name: exchanges.control,
          type: 'fanout',
          arguments: {},
          purpose: 'cancel signals; each worker binds its own queue',
        },
      ],
      queues: [
        ...work.map((w) => ({
          name: w.queue,
          arguments: workArguments,
          ...legacy(legacyWorkArguments),
          purpose: w.high
            ? `${w.type} work of priority ${HIGH_PRIORITY} and up (consumed alongside)`
            : `${w.type} work`,
        })),
        // The operators' queues: the api reads them too (browse, redrive), so both apps declare them.
        {
          name: queues.unrouted,
          arguments: { ...queueType },
          ...legacy(legacyQueueType),
          purpose: 'messages no binding matched; redriven when a worker for their type binds',
        },
        { name: queues.dead, arguments: { ...queueType }, ...legacy(legacyQueueType), purpose: 'dead letters' },
        ...(serves.length === 0
          ? []
          : retry.map((tier) => ({
              name: tier.name,
              // No consumers: a message waits out its per-message TTL (one TTL per queue, so no
              // head-of-line blocking), then dead-letters back to the work exchange.
              arguments: { ...queueType, 'x-dead-letter-exchange': exchanges.work, ...atLeastOnce },
              ...legacy({ ...legacyQueueType, 'x-dead-letter-exchange': exchanges.work }),
              purpose: `retry after ${tier.label}`,
            }))),
      ],
      bindings: [
        ...work.map((w) => ({ queue: w.queue, exchange: exchanges.work, routingKey: w.routingKey, arguments: {} })),
        { queue: queues.unrouted, exchange: exchanges.unrouted, routingKey: '', arguments: {} },
        { queue: queues.dead, exchange: exchanges.dead, routingKey: '', arguments: {} },
        ...(serves.length === 0
          ? []
          : retry.map((tier) => ({
              queue: tier.name,
              exchange: exchanges.retry,
              routingKey: '',
              arguments: { 'x-match': 'all', [HEADERS.retryTier]: tier.label },
            }))),
      ],
    },
    cfg.RABBITMQ_QUEUE_TYPE,
    serves,
  );
}
