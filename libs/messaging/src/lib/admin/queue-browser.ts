import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable } from '@nestjs/common';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { HEADERS } from '../messaging.constants';
import { isUuid, parseWorkMessage, taskIdsOf } from '../task-message';
import { BrokerUnavailableError } from './broker-admin.errors';

/** Hard cap on messages looked at in one call: they are all held unacked until it ends. */
export const MAX_BROWSE = 1000;
/** Bytes of a body shown in a listing. */
const BODY_PREVIEW = 2048;

/** A message of a dead-letter or unrouted queue, as an operator sees it. */
export interface BrowsedMessage {
  messageId: string | null;
  /** From the body (a bundle's first), else the correlation id; null when neither is a uuid. */
  taskId: string | null;
  /** Every task the body carries (several for a bundle); [taskId] or [] otherwise. */
  taskIds: string[];
  type: string | null;
  /** The routing key it was first published with. */
  routingKey: string;
  reasonCode: string | null;
  reason: string | null;
  deadLetteredAt: string | null;
  /** The body is not a work message (`{v: 1, taskId, type}` or a bundle `{v: 2, type, taskIds}`). */
  malformed: boolean;
  /** Looked at before (by a consumer or an earlier listing). */
  redelivered: boolean;
  /** At most 2 KB of the body as UTF-8. */
  body: string;
  headers: Record<string, unknown>;
}

export type BrowseDecision = 'ack' | 'keep';

function str(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

/** @internal The operator's view of a raw message. */
export function describeMessage(msg: GetMessage): BrowsedMessage {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const read = parseWorkMessage(msg.content);
  const parsed = read.ok ? read.message : null;
  const ids = parsed ? taskIdsOf(parsed) : [];
  const correlation = str(msg.properties.correlationId);
  // Broker dead-lettering (delivery limit, rejection) leaves x-death instead of our reason headers.
  const death = Array.isArray(headers['x-death']) ? (headers['x-death'][0] as Record<string, unknown>) : undefined;
  const safeHeaders = Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('utf8') : v]),
  );
  return {
    messageId: str(msg.properties.messageId),
    taskId: ids[0] ?? (correlation && isUuid(correlation) ? correlation.toLowerCase() : null),
    taskIds: ids.length > 0 ? ids : correlation && isUuid(correlation) ? [correlation.toLowerCase()] : [],
    type: parsed?.type ?? null,
    routingKey: str(headers[HEADERS.originalRoutingKey]) ?? msg.fields.routingKey,
    reasonCode: str(headers[HEADERS.reasonCode]) ?? (death ? `BROKER.${String(death['reason']).toUpperCase()}` : null),
    reason:
      str(headers[HEADERS.reason]) ??
      (death ? `dead-lettered by the broker from ${String(death['queue'])} (${String(death['reason'])})` : null),
    deadLetteredAt: str(headers[HEADERS.deadLetteredAt]),
    malformed: parsed === null,
    redelivered: msg.fields.redelivered,
    body: msg.content.subarray(0, BODY_PREVIEW).toString('utf8'),
    headers: safeHeaders,
  };
}

/**
 * Reads messages of a queue nobody consumes (dead letters, unrouted) without losing them:
 * `basic.get` on a channel of its own, every message held unacked until the call ends, then each
 * either acked (removed) or handed back (`nack` with requeue; closing the channel does the same if
 * this process dies). Holding them means one call never sees a message twice, and two concurrent
 * calls never see the same one. Bounded by MAX_BROWSE.
 */
@Injectable()
export class QueueBrowser {
  constructor(private readonly amqp: AmqpConnection) {}

  /** Up to `limit` messages from the head of `queue`, all left in place. */
  async peek(queue: string, limit: number): Promise<{ total: number; items: BrowsedMessage[] }> {
    const items: BrowsedMessage[] = [];
    const { total } = await this.visit(queue, limit, async (m) => {
      items.push(m);
      return 'keep';
    });
    return { total, items };
  }

  /**
   * Visits up to `limit` messages from the head of `queue`: `decide` runs one message at a time and
   * says whether to remove it (`ack`, only after whatever it did is done) or keep it. A throwing
   * `decide` keeps that message and every one not yet decided, and the error propagates.
   * `total`: messages ready in the queue before the visit.
   */
  async visit(
    queue: string,
    limit: number,
    decide: (m: BrowsedMessage, raw: GetMessage) => Promise<BrowseDecision>,
  ): Promise<{ total: number; kept: number }> {
    const model = this.amqp.managedConnection.connection as unknown as ChannelModel | undefined;
    if (!model) throw new BrokerUnavailableError('not connected to RabbitMQ');
    const ch: Channel = await model.createChannel();
    let channelError: Error | null = null;
    ch.on('error', (err: Error) => (channelError = err));
    const held: GetMessage[] = [];
    try {
      const { messageCount: total } = await ch.checkQueue(queue);
      // Only what was there at the start: a message republished into this same queue meanwhile (an
      // unroutable one redriven from unrouted comes back through the alternate exchange) waits for the next visit.
      const bound = Math.max(0, Math.min(limit, MAX_BROWSE, total));
      for (let i = 0; i < bound; i++) {
        const msg = await ch.get(queue, { noAck: false });
        if (!msg) break;
        held.push(msg);
        const decision = await decide(describeMessage(msg), msg);
        if (decision === 'ack') {
          ch.ack(msg);
          held.pop();
        }
      }
      if (channelError) throw channelError;
      return { total, kept: held.length };
    } finally {
      // Hand back everything kept, in one frame; then close (which would requeue them anyway).
      if (held.length && !channelError) {
        try {
          ch.nackAll(true);
        } catch {
          /* channel gone: the broker requeues unacked messages itself */
        }
      }
      await ch.close().catch(() => undefined);
    }
  }
}
