import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Injectable } from '@nestjs/common';
import type { ChannelModel } from 'amqplib';

/**
 * Asks the broker about a queue (`queue.declare` passive) on a throwaway channel, so a missing
 * queue (404 closes the channel) never touches the channels that consume or publish.
 */
@Injectable()
export class QueueProbe {
  constructor(private readonly amqp: AmqpConnection) {}

  /**
   * Messages ready in `queue` (deliveries held unacked by consumers are not counted), or null when
   * the broker cannot say: not connected, or no such queue.
   */
  async readyMessages(queue: string): Promise<number | null> {
    const model = this.amqp.managedConnection.connection as unknown as ChannelModel | undefined;
    if (!model) return null;
    try {
      const ch = await model.createChannel();
      ch.on('error', () => undefined); // the failed check's promise carries the error
      try {
        return (await ch.checkQueue(queue)).messageCount;
      } finally {
        await ch.close().catch(() => undefined);
      }
    } catch {
      return null;
    }
  }
}
