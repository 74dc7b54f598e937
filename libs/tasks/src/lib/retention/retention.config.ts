import { z } from 'zod';
import { env } from '@tasksys/platform';

const DAY_MS = 86_400_000;

export const retentionConfigSchema = z.object({
  /**
   * Finished tasks (succeeded, failed, cancelled) and their events are deleted this long after they
   * finished (`finished_at`). 0 keeps them forever (the job does not run); otherwise at least a second.
   */
  TASK_RETENTION_MS: env
    .int(30 * DAY_MS, 0, 100 * 365 * DAY_MS)
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (keep finished tasks forever) or at least 1000'),
  /** Most tasks deleted by one statement (each its own short transaction), with their events. */
  TASK_RETENTION_BATCH_SIZE: env.int(1000, 1, 10_000),
  /** Pause between two batches of a round, so submits and transitions get the disk and the locks in between. */
  TASK_RETENTION_PAUSE_MS: env.int(1000, 0, 60_000),
  /** How often a round starts (on one replica at a time); a round runs until nothing is left past the retention. */
  TASK_RETENTION_INTERVAL_MS: env.int(60_000, 100, DAY_MS),
});
export type RetentionConfig = z.infer<typeof retentionConfigSchema>;
