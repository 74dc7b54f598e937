import { z } from 'zod';
import { env } from '@tasksys/platform';

/** The completion webhooks' variables (api). */
export const webhooksConfigSchema = z.object({
  /**
   * Allow callback urls whose host is (or resolves to) a loopback, private, link-local, metadata or other
   * non-public address. Off in production: a tenant could otherwise make the api call its own network.
   */
  WEBHOOK_ALLOW_PRIVATE: env.flag(false),
  /** How long a delivery is retried after the task ended before it is marked failed (default a day). */
  WEBHOOK_RETRY_PERIOD_MS: env.int(86_400_000, 1_000, 30 * 86_400_000),
  /** First retry delay; each next one doubles (with jitter), at most an hour. */
  WEBHOOK_RETRY_BASE_MS: env.int(5_000, 10, 3_600_000),
  /** One attempt's limit, connect to last byte; past it the attempt failed (timeout). */
  WEBHOOK_TIMEOUT_MS: env.int(10_000, 100, 60_000),
  /** Attempts in flight per api process: a slow receiver holds one of these, never a worker or a transition. */
  WEBHOOK_CONCURRENCY: env.int(16, 1, 1_000),
  /** Fallback poll for due deliveries (retries fall due without a notification; new ones also NOTIFY). */
  WEBHOOK_POLL_MS: env.int(1_000, 20, 60_000),
});
export type WebhooksConfig = z.infer<typeof webhooksConfigSchema>;
