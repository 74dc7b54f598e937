import { randomUUID } from 'node:crypto';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable, Logger } from '@nestjs/common';
import type { Channel, Message, MessageProperties, Options } from 'amqplib';
import { inMessagingSpan } from '@tasksys/platform';
import type { MessagingConfig } from '../messaging.config';
import { HEADERS, InjectMessagingConfig } from '../messaging.constants';
import { PublishError, type PublishFailure } from '../messaging.errors';
import type { OutboxRecord } from '../outbox/outbox.store';
import { pickRetryTier } from '../retry-policy';
import { TASK_MESSAGE_SCHEMA_VERSION, taskIdsOf, type WorkMessage } from '../task-message';
import { Topology, type RetryTier } from '../topology/topology';
import { outboxPublishSpan } from '../tracing/publish-span';

export interface PublishOptions {
  /** Unique per publish; a fresh uuid unless given (the outbox passes its row's id for dedup). */
  messageId?: string;
  /** The task id. */
  correlationId?: string;
  /** Sets the `x-task-attempt` header. */
  attempt?: number;
  /** W3C trace context of the caller, when there is one. */
  traceparent?: string;
  headers?: Record<string, unknown>;
  /** Per-message TTL in ms (retry tiers). */
  expiration?: number;
  /** Message priority 0-9 (classic work queues are priority queues). */
  priority?: number;
  /** Return (and fail) the message when nothing routes it; on unless a signal may go unheard. */
  mandatory?: boolean;
}

export interface DeadLetterReason {
  /** Stable code: one of ERROR_CODES (`TASK.ABANDONED`, `MESSAGE.NOT_JSON`) or a handler's own (`DEMO.FATAL`). */
  code: string;
  message: string;
  /** The queue the message was consumed from. */
  queue?: string;
  /** The routing key the message was delivered with (`fields.routingKey`). */
  routingKey?: string;
}

export interface PublisherStats {
  published: number;
  confirmed: number;
  nacked: number;
  returned: number;
  timeouts: number;
  failed: number;
}

interface PendingPublish {
  inFlight: number;
  returned?: string;
}

/** The `v` of a message body (a work message's: 1 one task, 2 a bundle), for its schema-version header. */
function schemaVersionOf(body: unknown): number | undefined {
  const v = typeof body === 'object' && body !== null ? (body as { v?: unknown }).v : undefined;
  return typeof v === 'number' ? v : undefined;
}

/** Longest stored reason text; headers travel with every copy of the message. */
const MAX_REASON_LENGTH = 1000;

/**
 * Every publish of the system: confirmed (resolves only on the broker's ack), persistent,
 * `mandatory` with returns turned into failures, and bounded by RABBITMQ_PUBLISH_TIMEOUT_MS
 * (the connection manager would otherwise buffer forever while disconnected).
 *
 * Rejects with `PublishError` (`reason`: returned | nacked | timeout | closed | unknown-exchange |
 * error): the message must be treated as not sent. A timeout or a reconnect can still leave a copy
 * in the broker: consumers absorb duplicates.
 */
@Injectable()
export class TaskPublisher {
  private readonly logger = new Logger(TaskPublisher.name);
  private readonly pending = new Map<string, PendingPublish>();
  private readonly counters: PublisherStats = {
    published: 0,
    confirmed: 0,
    nacked: 0,
    returned: 0,
    timeouts: 0,
    failed: 0,
  };

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly topology: Topology,
    @InjectMessagingConfig() private readonly config: Pick<MessagingConfig, 'RABBITMQ_PUBLISH_TIMEOUT_MS'>,
  ) {
    // A setup runs on every channel the wrapper creates, so the listener survives reconnects.
    void amqp.managedChannel
      .addSetup((ch: Channel) => {
        ch.on('return', (msg: Message) => this.onReturn(msg));
      })
      .catch((err: Error) => this.logger.error(`Could not attach the return listener: ${err.message}`));
  }

  stats(): PublisherStats {
    return { ...this.counters };
  }

  /** Publishes `body` (a Buffer as is, anything else as JSON). */
  async publish(exchange: string, routingKey: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    const messageId = opts.messageId ?? randomUUID();
    const content = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const headers: Record<string, unknown> = { [HEADERS.schemaVersion]: TASK_MESSAGE_SCHEMA_VERSION, ...opts.headers };
    if (opts.attempt !== undefined) headers[HEADERS.attempt] = opts.attempt;
    if (opts.traceparent) headers[HEADERS.traceparent] = opts.traceparent;
    // `timeout` is read by amqp-connection-manager's ChannelWrapper, not part of amqplib's type.
    const options: Options.Publish & { timeout: number } = {
      persistent: true,
      mandatory: opts.mandatory ?? true,
      messageId,
      correlationId: opts.correlationId,
      contentType: 'application/json',
      timestamp: Math.floor(Date.now() / 1000),
      headers,
      expiration: opts.expiration === undefined ? undefined : String(opts.expiration),
      priority: opts.priority || undefined,
      timeout: this.config.RABBITMQ_PUBLISH_TIMEOUT_MS,
    };

    const entry = this.pending.get(messageId) ?? { inFlight: 0 };
    entry.inFlight++;
    this.pending.set(messageId, entry);
    this.counters.published++;
    try {
      try {
        await this.amqp.publish(exchange, routingKey, content, options);
      } catch (err) {
        throw this.failure(err as Error, messageId);
      }
      // A basic.return precedes the basic.ack on the same channel, so the return listener has run
      // by now; one macrotask more covers a return and an ack split across socket reads.
      if (entry.returned === undefined) await nextMacrotask();
      if (entry.returned !== undefined) {
        this.counters.returned++;
        throw new PublishError('returned', `${exchange} "${routingKey}": ${entry.returned}`, messageId);
      }
      this.counters.confirmed++;
    } finally {
      if (--entry.inFlight === 0) this.pending.delete(messageId);
    }
  }

  /** A work message (one task or a bundle) to the work exchange, under its type's routing key for its priority. */
  publishTask(
    msg: WorkMessage,
    opts: { attempt: number; priority?: number; headers?: Record<string, unknown>; traceparent?: string },
  ): Promise<void> {
    const routingKey = this.topology.routingKey(msg.type, opts.priority);
    return this.publish(this.topology.exchanges.work, routingKey, msg, {
      ...opts,
      correlationId: taskIdsOf(msg)[0],
      headers: { [HEADERS.schemaVersion]: msg.v, ...opts.headers },
    });
  }

  /** The retry tier that serves a delay of `delayMs` (see `pickRetryTier`): its delay is the one a retry really waits. */
  retryTierFor(delayMs: number): RetryTier {
    return pickRetryTier(delayMs, this.topology.queues.retry);
  }

  /**
   * A task message to the retry tier serving `delayMs` (see `pickRetryTier`). It comes back to the
   * work exchange, under its task type, when the tier's TTL expires. Returns the tier used.
   */
  async publishRetry(
    msg: WorkMessage,
    opts: {
      attempt: number;
      delayMs: number;
      priority?: number;
      headers?: Record<string, unknown>;
      traceparent?: string;
    },
  ): Promise<RetryTier> {
    const tier = pickRetryTier(opts.delayMs, this.topology.queues.retry);
    // The routing key it comes back to the work exchange under, and its priority, are the task's own.
    await this.publish(this.topology.exchanges.retry, this.topology.routingKey(msg.type, opts.priority), msg, {
      correlationId: taskIdsOf(msg)[0],
      attempt: opts.attempt,
      priority: opts.priority,
      traceparent: opts.traceparent,
      headers: { [HEADERS.schemaVersion]: msg.v, ...opts.headers, [HEADERS.retryTier]: tier.label },
      expiration: tier.delayMs,
    });
    return tier;
  }

  /** An explicit, confirmed dead letter (docs/ARCHITECTURE.md, "the ack rule"), keeping the original headers and body. */
  publishDeadLetter(content: Buffer, originalProperties: MessageProperties, reason: DeadLetterReason): Promise<void> {
    const headers: Record<string, unknown> = {
      ...(originalProperties.headers ?? {}),
      [HEADERS.reasonCode]: reason.code,
      [HEADERS.reason]: reason.message.slice(0, MAX_REASON_LENGTH),
      [HEADERS.deadLetteredAt]: new Date().toISOString(),
    };
    if (reason.routingKey !== undefined) headers[HEADERS.originalRoutingKey] = reason.routingKey;
    if (reason.queue !== undefined) headers[HEADERS.originalQueue] = reason.queue;
    const correlationId: unknown = originalProperties.correlationId;
    return this.publish(this.topology.exchanges.dead, reason.routingKey ?? '', content, {
      correlationId: typeof correlationId === 'string' ? correlationId : undefined,
      headers,
    });
  }

  /**
   * A dead letter that carries some of the tasks of `original` (a bundle's dead letter, part of it
   * redriven): the same routing key and headers, so it reads as the same dead letter, for fewer tasks.
   */
  republishDeadLetter(msg: WorkMessage, original: Pick<Message, 'fields' | 'properties'>): Promise<void> {
    const correlationId = taskIdsOf(msg)[0];
    return this.publish(this.topology.exchanges.dead, original.fields.routingKey, msg, {
      correlationId,
      headers: { ...(original.properties.headers ?? {}), [HEADERS.schemaVersion]: msg.v },
    });
  }

  /**
   * An outbox row: its logical exchange role (`work`, `control`) maps to the namespaced exchange.
   * An unknown role rejects here: publishing to a missing exchange would close the channel.
   */
  publishOutbox(record: OutboxRecord): Promise<void> {
    const exchange = this.topology.exchangeForRole(record.exchange);
    if (!exchange) {
      this.counters.failed++;
      return Promise.reject(
        new PublishError('unknown-exchange', `outbox row ${record.id}: role "${record.exchange}"`, record.messageId),
      );
    }
    const attempt = record.headers[HEADERS.attempt];
    const work = exchange === this.topology.exchanges.work;
    const routingKey = work ? this.topology.routingKey(record.routingKey, record.priority) : record.routingKey;
    // The relay's PRODUCER span, the child of the row's traceparent (the submit); the message then names it.
    return inMessagingSpan(outboxPublishSpan(record, exchange, routingKey, work), (span) =>
      this.publish(exchange, routingKey, record.body, {
        priority: work ? record.priority : undefined,
        messageId: record.messageId,
        correlationId: record.correlationId ?? undefined,
        headers: schemaVersionOf(record.body)
          ? { [HEADERS.schemaVersion]: schemaVersionOf(record.body), ...record.headers }
          : record.headers,
        attempt: typeof attempt === 'number' ? attempt : undefined,
        traceparent: span.traceparent,
        // A cancel signal with no worker listening has nobody to stop (the heartbeat catches a
        // missed one anyway): it must not come back as a failed publish and stall its outbox row.
        mandatory: exchange !== this.topology.exchanges.control,
      }),
    );
  }

  private onReturn(msg: Message): void {
    const { messageId } = msg.properties as { messageId?: unknown };
    const id = typeof messageId === 'string' ? messageId : '';
    // A basic.return carries reply code and text; amqplib's type only declares the common fields.
    const fields = msg.fields as Message['fields'] & { replyCode?: number; replyText?: string };
    const text = `${fields.replyCode} ${fields.replyText}`;
    this.logger.warn(
      `Message ${id || '(no id)'} returned by the broker: ${text} (exchange ${msg.fields.exchange}, key "${msg.fields.routingKey}")`,
    );
    const entry = this.pending.get(id);
    if (entry) entry.returned = text;
    else this.counters.returned++; // a publish that already gave up (timeout); still count it
  }

  private failure(err: Error, messageId: string): PublishError {
    if (err instanceof PublishError) return err;
    const text = err?.message ?? String(err);
    let reason: PublishFailure = 'error';
    if (text === 'timeout') reason = 'timeout';
    else if (/nack/i.test(text)) reason = 'nacked';
    else if (/closed/i.test(text)) reason = 'closed';
    if (reason === 'timeout') this.counters.timeouts++;
    else if (reason === 'nacked') this.counters.nacked++;
    else this.counters.failed++;
    return new PublishError(reason, text, messageId);
  }
}
