import { z } from 'zod';
import { env } from '@tasksys/platform';

/** Comma-separated positive delays in ms, strictly ascending (one retry queue per entry). */
const retryTiers = z
  .string()
  .default('1000,10000,60000,600000')
  .transform((raw, ctx) => {
    const tiers = raw.split(',').map((s) => Number(s.trim()));
    const valid =
      tiers.length > 0 &&
      tiers.every((t) => Number.isInteger(t) && t > 0) &&
      tiers.every((t, i) => i === 0 || t > tiers[i - 1]);
    if (!valid) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma list of ascending positive whole milliseconds' });
      return z.NEVER;
    }
    return tiers;
  });

/**
 * Environment of everything that talks to RabbitMQ. Use with `validateEnv(messagingConfigSchema)`
 * from `@tasksys/platform` (merged with the app's own schema).
 */
export const messagingConfigSchema = z.object({
  RABBITMQ_URL: env.url(['amqp', 'amqps'], 'amqp://guest:guest@127.0.0.1:5672'),
  /** Prefix of every exchange and queue name, so several systems (or test runs) share a broker. */
  TASKS_NAMESPACE: env.name('tasks'),
  RABBITMQ_QUEUE_TYPE: z.enum(['classic', 'quorum'], 'must be classic or quorum').default('classic'),
  /** Quorum queues only: deliveries of one message before the broker dead-letters it. */
  RABBITMQ_DELIVERY_LIMIT: env.int(20, 1),
  /** How long a publish may wait for the broker's confirm (including while disconnected). */
  RABBITMQ_PUBLISH_TIMEOUT_MS: env.int(10_000, 100),
  RETRY_TIERS_MS: retryTiers,
  OUTBOX_BATCH_SIZE: env.int(500, 1, 10_000),
  OUTBOX_POLL_MS: env.int(1000, 10),
});

export type MessagingConfig = z.output<typeof messagingConfigSchema>;
