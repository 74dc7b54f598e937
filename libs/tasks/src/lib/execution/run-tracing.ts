import { type Delivery, HEADERS } from '@tasksys/messaging';
import { activeTraceparent, annotateActiveSpan, failActiveSpan, inMessagingSpan } from '@tasksys/platform';
import type { Task } from '../entities';
import type { RunOutcome } from './handler-runner';

/**
 * @internal Handles a delivery inside its CONSUMER span, the child of the span its `traceparent`
 * names (the relay's publish): the claim, the handler and the outcome's statements nest under it.
 * Tracing off: `handle()` as it is.
 */
export function inDeliverySpan(delivery: Delivery, handle: () => Promise<void>): Promise<void> {
  const { fields, properties } = delivery.message;
  const traceparent: unknown = properties.headers?.[HEADERS.traceparent];
  const correlationId: unknown = properties.correlationId;
  const messageId: unknown = properties.messageId;
  return inMessagingSpan(
    {
      operation: 'process',
      destination: fields.exchange,
      parent: typeof traceparent === 'string' ? traceparent : undefined,
      attributes: {
        'messaging.message.id': typeof messageId === 'string' ? messageId : undefined,
        'messaging.message.conversation_id': typeof correlationId === 'string' ? correlationId : undefined,
        'messaging.rabbitmq.destination.routing_key': fields.routingKey,
        'messaging.rabbitmq.message.delivery_tag': fields.deliveryTag,
        'tasksys.task.id': typeof correlationId === 'string' ? correlationId : undefined,
      },
    },
    handle,
  );
}

/** @internal The run's facts on its delivery span: the task, its attempt, how it ended (a failure as the span's error). */
export function annotateRun(task: Task, outcome: RunOutcome): void {
  annotateActiveSpan({
    'tasksys.task.id': task.id,
    'tasksys.task.type': task.type,
    'tasksys.task.attempt': task.attempt,
    'tasksys.task.outcome': outcome.kind === 'aborted' ? `aborted:${outcome.reason}` : outcome.kind,
  });
  if (outcome.kind === 'failed') failActiveSpan(outcome.error);
}

/**
 * @internal The `traceparent` a successor copy of a delivery carries (a retry, a deferral, a hand-back):
 * with tracing on, the run's span, so the next run is its child; off, the delivery's own. Either way
 * every run of a task stays in the trace of its submit.
 */
export function successorTraceparent(delivery: Delivery): string | undefined {
  const own: unknown = delivery.message.properties.headers?.[HEADERS.traceparent];
  return activeTraceparent() ?? (typeof own === 'string' ? own : undefined);
}
