import { z } from 'zod';
import { messagingConfigSchema } from '@tasksys/messaging';
import { env, loggingConfigSchema } from '@tasksys/platform';
import {
  databaseConfigSchema,
  retentionConfigSchema,
  schedulesConfigSchema,
  taskTypesConfigSchema,
  workerConfigSchema,
} from '@tasksys/tasks';

/** Settings of `sql.query` that only the worker, which runs it, reads. */
export const sqlQueryConfigSchema = z.object({
  /**
   * Largest result of one `sql.query` task, in bytes as PostgreSQL sends them (rows together, and
   * any single message); past it the task fails with SQL.RESULT_TOO_LARGE. The worker holds a
   * result in memory while it runs, next to every other task in flight, so this bounds that memory.
   */
  SQL_MAX_RESULT_BYTES: env.int(16 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024),
});

/** Every variable the worker reads, validated at start-up (a bad one is named in the error). */
export const workerAppConfigSchema = z.object({
  ...databaseConfigSchema.shape,
  ...messagingConfigSchema.shape,
  ...taskTypesConfigSchema.shape,
  ...sqlQueryConfigSchema.shape,
  ...workerConfigSchema.shape,
  ...retentionConfigSchema.shape,
  ...schedulesConfigSchema.shape,
  ...loggingConfigSchema.shape,
});
export type WorkerAppConfig = z.infer<typeof workerAppConfigSchema>;

/** What the `sql.query` handler reads of the configuration. */
export type SqlQueryConfig = Pick<WorkerAppConfig, 'SQL_TARGET_URL' | 'SQL_MAX_RESULT_BYTES'>;
