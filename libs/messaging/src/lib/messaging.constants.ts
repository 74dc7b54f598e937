import { Inject } from '@nestjs/common';

/** @internal Inject token of the validated `MessagingConfig` (MessagingModule's options). */
export const MESSAGING_CONFIG = Symbol('MESSAGING_CONFIG');

/** @internal Injects the MessagingConfig: `@InjectMessagingConfig() config: MessagingConfig`. */
export const InjectMessagingConfig = () => Inject(MESSAGING_CONFIG);

/** Message headers this system sets and reads. */
export const HEADERS = {
  attempt: 'x-task-attempt',
  schemaVersion: 'x-schema-version',
  traceparent: 'traceparent',
  /**
   * Selects the retry tier on the headers exchange. Deliberately without the `x-` prefix:
   * RabbitMQ's headers exchange ignores binding arguments that start with `x-` (other than
   * `x-match`), so an `x-retry-tier` binding would match every message and copy each retry
   * into every tier queue (checked against RabbitMQ 3.10).
   */
  retryTier: 'retry-tier',
  reasonCode: 'x-reason-code',
  reason: 'x-reason',
  originalRoutingKey: 'x-original-routing-key',
  originalQueue: 'x-original-queue',
  deadLetteredAt: 'x-dead-lettered-at',
} as const;
