import { z } from 'zod';
import { brokerAdminConfigSchema, messagingConfigSchema } from '@tasksys/messaging';
import { env, loggingConfigSchema } from '@tasksys/platform';
import {
  databaseConfigSchema,
  schedulesConfigSchema,
  taskTypesConfigSchema,
  webhooksConfigSchema,
} from '@tasksys/tasks';

const BODY_LIMIT = /^\d+(b|kb|mb)$/i;

/** The api's own variables; the full schema below adds the database, broker and task-type ones. */
export const apiOwnConfigSchema = z.object({
  PORT: env.int(3000, 0, 65535),
  /**
   * A key with the admin role, for bootstrapping (creating the first keys). Unset: only keys
   * stored in `api_keys` authenticate. At least 16 characters when set.
   */
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Requests per minute per API key across all replicas (a burst of the whole budget is allowed). */
  RATE_LIMIT_PER_MINUTE: env.int(600, 1, 1_000_000),
  /**
   * Requests per minute per client address whose key is missing, unknown or revoked, across all
   * replicas; counted before the key is looked up, so guessing keys costs no database work past it.
   */
  RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: env.int(60, 1, 1_000_000),
  /** Largest JSON body accepted, e.g. `256kb`, `1mb`; larger ones get 413. */
  BODY_LIMIT: z.string().regex(BODY_LIMIT, 'must be a size like 256kb or 1mb').default('256kb'),
  /** Interval of SSE heartbeat comments, which keep proxies from closing idle streams. */
  SSE_HEARTBEAT_MS: env.int(15_000, 100, 300_000),
  /** Workers the fleet should have; the admin API and `tasksys_workers_expected` compare the live ones with it. */
  WORKERS_EXPECTED: env.int(1, 0, 100_000),
  /** Directory of the web console's build; default: found next to the api bundle or under dist/. */
  CONSOLE_DIR: z.string().min(1).optional(),
});

export const apiConfigSchema = databaseConfigSchema
  .extend(messagingConfigSchema.shape)
  .extend(brokerAdminConfigSchema.shape)
  .extend(taskTypesConfigSchema.shape)
  .extend(loggingConfigSchema.shape)
  .extend(webhooksConfigSchema.shape)
  .extend(schedulesConfigSchema.shape)
  .extend(apiOwnConfigSchema.shape);

export type ApiConfig = z.output<typeof apiConfigSchema>;
