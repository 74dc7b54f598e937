import { Inject } from '@nestjs/common';
import { z } from 'zod';
import { env } from '@tasksys/platform';

/**
 * Environment of the broker inspection used by the admin API: the RabbitMQ management HTTP API,
 * read when reachable (ready and unacked counts per queue); otherwise AMQP `checkQueue` answers
 * (ready count and consumers only).
 */
export const brokerAdminConfigSchema = z.object({
  /** Credentials in the URL become a Basic authorization header; the path prefix is kept (behind a proxy). */
  RABBITMQ_MANAGEMENT_URL: env.url(['http', 'https'], 'http://guest:guest@127.0.0.1:15672'),
  /** Bound on one management API call; past it the AMQP fallback answers. */
  RABBITMQ_MANAGEMENT_TIMEOUT_MS: env.int(1500, 100, 60_000),
});

export type BrokerAdminConfig = z.output<typeof brokerAdminConfigSchema>;

/** @internal Inject token of the validated `BrokerAdminConfig` (BrokerAdminModule's options). */
export const BROKER_ADMIN_CONFIG = Symbol('BROKER_ADMIN_CONFIG');

/** @internal Injects the BrokerAdminConfig: `@InjectBrokerAdminConfig() config: BrokerAdminConfig`. */
export const InjectBrokerAdminConfig = () => Inject(BROKER_ADMIN_CONFIG);
