import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable, Logger } from '@nestjs/common';
import type { ChannelModel } from 'amqplib';
import { type MessagingConfig, rabbitmqUrls } from '../messaging.config';
import { InjectMessagingConfig } from '../messaging.constants';
import { Topology } from '../topology/topology';
import { type BrokerAdminConfig, InjectBrokerAdminConfig } from './broker-admin.config';
import { BrokerUnavailableError } from './broker-admin.errors';

export type QueueRole = 'work' | 'unrouted' | 'dead' | 'retry';

export interface QueueStats {
  name: string;
  role: QueueRole;
  /** Work queues: the task type whose work waits there. */
  type?: string;
  /** Whether the broker has the queue (a work queue exists once a worker serving its type declared it). */
  exists: boolean;
  /** Age of the message at the head of the queue, from the management API; null when unknown or empty. */
  oldestMessageAgeMs: number | null;
  /** ready + unacked (ready alone when unacked is unknown). */
  messages: number;
  ready: number;
  /** Delivered and not yet acknowledged; null when only AMQP answered (it cannot tell). */
  unacked: number | null;
  consumers: number;
}

export interface QueueStatsReport {
  /** `management`: the management HTTP API answered; `amqp`: the fallback (no unacked counts). */
  source: 'management' | 'amqp';
  queues: QueueStats[];
}

interface ManagementQueue {
  head_message_timestamp?: number | null;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  consumers?: number;
}

/** @internal The topology's queues, in operator order: the work queues of `types`, retry tiers, dead, unrouted. */
export function topologyQueues(
  topology: Topology,
  types: readonly string[],
): { name: string; role: QueueRole; type?: string }[] {
  return [
    ...types.flatMap((type) => topology.queuesOf(type).map((name) => ({ name, role: 'work' as const, type }))),
    ...topology.queues.retry.map((t) => ({ name: t.name, role: 'retry' as const })),
    { name: topology.queues.dead, role: 'dead' },
    { name: topology.queues.unrouted, role: 'unrouted' },
  ];
}

/**
 * Message and consumer counts of every queue of the topology, from the management HTTP API when it
 * answers within RABBITMQ_MANAGEMENT_TIMEOUT_MS, else from AMQP `checkQueue` (ready only). The
 * management API refreshes its figures every few seconds (`collect_statistics_interval`).
 */
@Injectable()
export class QueueStatsReader {
  private readonly logger = new Logger(QueueStatsReader.name);
  private readonly managementBase: string;
  private readonly authorization: string | undefined;
  private readonly vhost: string;
  private managementWasDown = false;

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly topology: Topology,
    @InjectMessagingConfig() messaging: Pick<MessagingConfig, 'RABBITMQ_URL'>,
    @InjectBrokerAdminConfig() private readonly config: BrokerAdminConfig,
  ) {
    const url = new URL(config.RABBITMQ_MANAGEMENT_URL);
    // fetch refuses URLs with credentials: move them into the header.
    this.authorization = url.username
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined;
    url.username = '';
    url.password = '';
    this.managementBase = url.toString().replace(/\/+$/, '');
    // Every node of a cluster list names the same vhost (the config checks it).
    const amqpPath = new URL(rabbitmqUrls(messaging.RABBITMQ_URL)[0]).pathname;
    this.vhost = amqpPath && amqpPath !== '/' ? decodeURIComponent(amqpPath.slice(1)) : '/';
  }

  /** Figures of every queue, the work queues of `types` first (those of types no worker ever served do not exist). */
  async read(types: readonly string[]): Promise<QueueStatsReport> {
    const queues = topologyQueues(this.topology, types);
    const fromManagement = await this.readManagement(queues.map((q) => q.name));
    const source = fromManagement ? 'management' : 'amqp';
    const missing = queues.filter((q) => !fromManagement?.has(q.name));
    const fromAmqp = missing.length ? await this.readAmqp(missing.map((q) => q.name)) : new Map<string, QueueStats>();
    return {
      source,
      queues: queues.map((q) => {
        const s = fromManagement?.get(q.name) ?? fromAmqp.get(q.name);
        const figures = s ?? {
          name: q.name,
          exists: false,
          messages: 0,
          ready: 0,
          unacked: null,
          consumers: 0,
          oldestMessageAgeMs: null,
        };
        return { ...figures, role: q.role, ...(q.type ? { type: q.type } : {}) };
      }),
    };
  }

  /** Per queue, or null when the management API is unreachable, refuses, or is too slow. */
  private async readManagement(names: string[]): Promise<Map<string, QueueStats> | null> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authorization) headers['authorization'] = this.authorization;
    const signal = AbortSignal.timeout(this.config.RABBITMQ_MANAGEMENT_TIMEOUT_MS);
    try {
      const out = new Map<string, QueueStats>();
      await Promise.all(
        names.map(async (name) => {
          const url =
            `${this.managementBase}/api/queues/${encodeURIComponent(this.vhost)}/${encodeURIComponent(name)}` +
            '?columns=messages,messages_ready,messages_unacknowledged,consumers,head_message_timestamp';
          const res = await fetch(url, { headers, signal });
          if (res.status === 404) return; // not declared (yet): the AMQP fallback reports it
          if (!res.ok) throw new Error(`management API answered ${res.status} for ${name}`);
          const q = (await res.json()) as ManagementQueue;
          // A queue the stats collector has not sampled yet has no figures: leave it to AMQP.
          if (q.messages_ready === undefined) return;
          const ready = q.messages_ready ?? 0;
          const unacked = q.messages_unacknowledged ?? 0;
          const head = typeof q.head_message_timestamp === 'number' ? q.head_message_timestamp * 1000 : null;
          out.set(name, {
            name,
            role: 'work',
            exists: true,
            ready,
            unacked,
            messages: q.messages ?? ready + unacked,
            consumers: q.consumers ?? 0,
            oldestMessageAgeMs: head === null || ready === 0 ? null : Math.max(0, Date.now() - head),
          });
        }),
      );
      if (this.managementWasDown) this.logger.log('RabbitMQ management API reachable again');
      this.managementWasDown = false;
      return out;
    } catch (err) {
      if (!this.managementWasDown) {
        this.logger.warn(
          `RabbitMQ management API not usable (${(err as Error).message}); queue figures from AMQP, without unacked counts`,
        );
      }
      this.managementWasDown = true;
      return null;
    }
  }

  private async readAmqp(names: string[]): Promise<Map<string, QueueStats>> {
    const model = this.amqp.managedConnection.connection as unknown as ChannelModel | undefined;
    if (!model) throw new BrokerUnavailableError('not connected to RabbitMQ');
    const out = new Map<string, QueueStats>();
    for (const name of names) {
      // One channel per queue: checkQueue on a missing queue closes its channel (404).
      const ch = await model.createChannel();
      ch.on('error', () => undefined);
      try {
        const q = await ch.checkQueue(name);
        out.set(name, {
          name,
          role: 'work',
          exists: true,
          messages: q.messageCount,
          ready: q.messageCount,
          unacked: null,
          consumers: q.consumerCount,
          oldestMessageAgeMs: null,
        });
      } catch {
        /* missing queue: reported as empty */
      } finally {
        await ch.close().catch(() => undefined);
      }
    }
    return out;
  }
}
