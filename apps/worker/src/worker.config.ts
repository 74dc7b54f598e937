import { messagingConfigSchema } from '@tasksys/messaging';
import { loggingConfigSchema } from '@tasksys/platform';
import { databaseConfigSchema, taskTypesConfigSchema, workerConfigSchema } from '@tasksys/tasks';
import { z } from 'zod';

/** Every variable the worker reads, validated at start-up (a bad one is named in the error). */
export const workerAppConfigSchema = z.object({
  ...databaseConfigSchema.shape,
  ...messagingConfigSchema.shape,
  ...taskTypesConfigSchema.shape,
  ...workerConfigSchema.shape,
  ...loggingConfigSchema.shape,
});
export type WorkerAppConfig = z.infer<typeof workerAppConfigSchema>;
