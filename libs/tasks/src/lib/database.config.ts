import { z } from 'zod';
import { env } from '@tasksys/platform';

export const databaseConfigSchema = z.object({
  DATABASE_URL: env.url(['postgres', 'postgresql'], 'postgres://postgres@127.0.0.1:5432/tasks'),
  /** Schema holding the product's tables; tests use one per run. */
  DATABASE_SCHEMA: env.name('public'),
  DATABASE_POOL_SIZE: env.int(10, 1, 200),
  /** Run pending migrations at start-up (under an advisory lock, so replicas can start together). */
  DATABASE_MIGRATE: env.flag(true),
  /**
   * How long the client waits for a statement's answer before it gives up on the connection's reply
   * (the server may still finish it: the executor then adopts a claim it did not hear back from).
   */
  /**
   * Most tasks one work message carries (a bundle: docs/ARCHITECTURE.md, "Bundles"): the tasks a batch
   * submit, a promotion or a wake queues together share messages of this many. 1 turns bundles off
   * (needed while workers older than bundles still run: they dead-letter bundles).
   */
  TASK_BUNDLE_SIZE: env.int(100, 1, 1000),
  DATABASE_QUERY_TIMEOUT_MS: env.int(60_000, 100, 3_600_000),
});
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;
