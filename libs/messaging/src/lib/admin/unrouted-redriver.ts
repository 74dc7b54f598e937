import { Injectable } from '@nestjs/common';
import { PublishError } from '../messaging.errors';
import { TaskPublisher } from '../publishing/task.publisher';
import { Topology } from '../topology/topology';
import { QueueBrowser } from './queue-browser';

export interface UnroutedRedriveResult {
  /** Republished to the work exchange (confirmed), then removed from the unrouted queue. */
  redriven: number;
  /** Left in place: not among the chosen task ids, or not sent. */
  skipped: number;
  /** The first publish that failed (nothing after it was tried); its message stays. */
  error: string | null;
}

/**
 * Sends messages of the unrouted queue back to the work exchange under the routing key they were
 * first published with (confirmed, same message id and headers), then acks each one. A message
 * that is still unroutable comes back to the unrouted queue through the alternate exchange.
 */
@Injectable()
export class UnroutedRedriver {
  constructor(
    private readonly browser: QueueBrowser,
    private readonly publisher: TaskPublisher,
    private readonly topology: Topology,
  ) {}

  /** Redrives the messages of the chosen tasks and/or task types (all when neither is given). */
  async redrive(opts: {
    taskIds?: string[];
    types?: readonly string[];
    limit: number;
  }): Promise<UnroutedRedriveResult> {
    return this.republishFrom(this.topology.queues.unrouted, opts);
  }

  /**
   * The same for any queue nobody consumes, for example the single work queue of versions before
   * per-type routing: each message goes back to the work exchange under its routing key, where the
   * binding of its type (or the alternate exchange) takes it.
   */
  async republishFrom(
    queue: string,
    opts: { taskIds?: string[]; types?: readonly string[]; limit: number },
  ): Promise<UnroutedRedriveResult> {
    const chosen = opts.taskIds ? new Set(opts.taskIds.map((id) => id.toLowerCase())) : null;
    const types = opts.types ? new Set(opts.types) : null;
    const result: UnroutedRedriveResult = { redriven: 0, skipped: 0, error: null };
    await this.browser.visit(queue, opts.limit, async (m, raw) => {
      const ofType = !types || types.has(this.topology.typeOfRoutingKey(raw.fields.routingKey));
      if (result.error || !ofType || (chosen && !m.taskIds.some((id) => chosen.has(id)))) {
        result.skipped++;
        return 'keep';
      }
      const headers = { ...(raw.properties.headers ?? {}), 'x-redriven-at': new Date().toISOString() };
      try {
        await this.publisher.publish(this.topology.exchanges.work, raw.fields.routingKey, raw.content, {
          messageId: m.messageId ?? undefined,
          correlationId: typeof raw.properties.correlationId === 'string' ? raw.properties.correlationId : undefined,
          priority: typeof raw.properties.priority === 'number' ? raw.properties.priority : undefined,
          headers,
        });
      } catch (err) {
        if (!(err instanceof PublishError)) throw err;
        result.error = err.message;
        result.skipped++;
        return 'keep';
      }
      result.redriven++;
      return 'ack';
    });
    return result;
  }
}
