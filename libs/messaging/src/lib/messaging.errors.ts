import { AppError, ERROR_CODES } from '@tasksys/platform';

/**
 * A queue or exchange already exists on the broker with other arguments or type (406
 * PRECONDITION_FAILED). Changing topology needs a migration plan (new name, shovel, drain),
 * so this is reported, never "fixed" by deleting the queue and its messages.
 */
export class TopologyMismatchError extends AppError {
  readonly code = ERROR_CODES.MESSAGING_TOPOLOGY_MISMATCH;

  constructor(
    readonly kind: 'queue' | 'exchange' | 'binding',
    readonly entity: string,
    /** The broker's text, which names the differing argument. */
    readonly brokerMessage: string,
  ) {
    super(`Topology mismatch on ${kind} "${entity}": ${brokerMessage}`);
  }
}

export type PublishFailure = 'returned' | 'nacked' | 'timeout' | 'closed' | 'unknown-exchange' | 'error';

/** A publish the broker did not take responsibility for: the message must be treated as not sent. */
export class PublishError extends AppError {
  readonly code = ERROR_CODES.MESSAGING_PUBLISH_FAILED;

  constructor(
    readonly reason: PublishFailure,
    message: string,
    readonly messageId?: string,
  ) {
    super(`Publish failed (${reason}): ${message}`);
  }
}
