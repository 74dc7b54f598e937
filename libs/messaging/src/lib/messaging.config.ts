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

const AMQP_PROTOCOLS = ['amqp:', 'amqps:'];

/** The nodes of `RABBITMQ_URL` (one URL, or a comma list of a cluster's nodes), in the order given. */
export function rabbitmqUrls(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * One AMQP URL or a comma list of them (a cluster's nodes): the apps connect to one and, when it is
 * lost, to the next (amqp-connection-manager rotates through the list on every reconnect).
 */
const rabbitmqUrl = z
  .string()
  .default('amqp://guest:guest@127.0.0.1:5672')
  .superRefine((raw, ctx) => {
    const items = raw.split(',').map((item) => item.trim());
    if (items.some((item) => item === '')) {
      ctx.addIssue({ code: 'custom', message: 'has an empty item; must be comma-separated amqp:// or amqps:// URLs' });
    }
    for (const item of items.filter((i) => i !== '')) {
      let protocol = '';
      try {
        protocol = new URL(item).protocol;
      } catch {
        // reported below
      }
      if (!AMQP_PROTOCOLS.includes(protocol)) {
        // Credentials stay out of the message: it lands in logs.
        ctx.addIssue({
          code: 'custom',
          message: `item ${JSON.stringify(redact(item))} is not an amqp:// or amqps:// URL`,
        });
      }
    }
    const vhosts = new Set(items.map(vhostOf).filter((v) => v !== undefined));
    if (vhosts.size > 1) ctx.addIssue({ code: 'custom', message: 'every node of the list must name the same vhost' });
  });

function redact(item: string): string {
  return item.replace(/\/\/[^@/]*@/, '//***@');
}

/** The vhost an AMQP URL names (`amqp://h` and `amqp://h/` both mean `/`), or undefined if not a URL. */
function vhostOf(item: string): string | undefined {
  try {
    return decodeURIComponent(new URL(item).pathname.replace(/^\//, '')) || '/';
  } catch {
    return undefined;
  }
}

/**
 * Environment of everything that talks to RabbitMQ. Use with `validateEnv(messagingConfigSchema)`
 * from `@tasksys/platform` (merged with the app's own schema).
 */
export const messagingConfigSchema = z.object({
  RABBITMQ_URL: rabbitmqUrl,
  /** Prefix of every exchange and queue name, so several systems (or test runs) share a broker. */
  TASKS_NAMESPACE: env.name('tasks'),
  RABBITMQ_QUEUE_TYPE: z.enum(['classic', 'quorum'], 'must be classic or quorum').default('classic'),
  /**
   * Quorum queues only: replicas of each queue (`x-quorum-initial-group-size`; the broker caps it at
   * the cluster's size). 3 survives one node down; an even number adds no tolerance over the odd one below.
   */
  RABBITMQ_QUORUM_REPLICAS: env.int(3, 1, 99),
  /** Quorum queues only: deliveries of one message before the broker dead-letters it. */
  RABBITMQ_DELIVERY_LIMIT: env.int(20, 1),
  /** How long a publish may wait for the broker's confirm (including while disconnected). */
  RABBITMQ_PUBLISH_TIMEOUT_MS: env.int(10_000, 100),
  RETRY_TIERS_MS: retryTiers,
  OUTBOX_BATCH_SIZE: env.int(500, 1, 10_000),
  OUTBOX_POLL_MS: env.int(1000, 10),
  /**
   * Relay rounds at once in a listening relay (the api's): one is woken while others wait for confirms.
   * 1 by default: in the bench, 4 rounds cut a slow confirm's wait but cost the api more than they
   * saved at 500 single submits/s (p50 2.6 s against 0.2 s); worth raising where confirms are slow.
   */
  OUTBOX_RELAY_CONCURRENCY: env.int(1, 1, 32),
});

export type MessagingConfig = z.output<typeof messagingConfigSchema>;
