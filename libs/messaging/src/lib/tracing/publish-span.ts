import type { MessagingSpanOptions } from '@tasksys/platform';
import { HEADERS } from '../messaging.constants';
import type { OutboxRecord } from '../outbox/outbox.store';

/** @internal The relay's publish span of an outbox row, per the OTel messaging conventions for RabbitMQ. */
export function outboxPublishSpan(
  record: OutboxRecord,
  exchange: string,
  routingKey: string,
  work: boolean,
): MessagingSpanOptions {
  const traceparent = record.headers[HEADERS.traceparent];
  return {
    operation: 'publish',
    destination: exchange,
    parent: typeof traceparent === 'string' ? traceparent : undefined,
    attributes: {
      'messaging.message.id': record.messageId,
      'messaging.message.conversation_id': record.correlationId ?? undefined,
      'messaging.rabbitmq.destination.routing_key': routingKey,
      'tasksys.task.id': work ? (record.correlationId ?? undefined) : undefined,
      'tasksys.task.type': work ? record.routingKey : undefined,
    },
  };
}
