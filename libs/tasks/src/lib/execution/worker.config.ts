import { hostname } from 'node:os';
import { z } from 'zod';
import { TASK_TYPE_NAME } from '@tasksys/messaging';
import { env } from '@tasksys/platform';

/** A comma list of task type names; unset or empty: every type the worker has a handler for. */
const taskTypeList = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return undefined;
    const types = raw.split(',').map((t) => t.trim());
    const bad = types.find((t) => !TASK_TYPE_NAME.test(t));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(bad)} is not a task type name (a comma list such as demo.sleep,sql.query)`,
      });
      return z.NEVER;
    }
    return types;
  });

export const workerConfigSchema = z.object({
  /** The task types this worker serves: their queues are declared, bound and consumed by it. */
  WORKER_TASK_TYPES: taskTypeList,
  /** Deliveries (and so tasks) in flight at once in this process, across all its task types; the channel prefetch. */
  WORKER_CONCURRENCY: env.int(10, 1, 10_000),
  /** How long a claim stays valid without a heartbeat; a crashed worker's tasks wait this long. */
  WORKER_LEASE_MS: env.int(15_000, 1_000, 3_600_000),
  /** On SIGTERM, how long in-flight tasks may run before they are aborted and handed over. */
  WORKER_SHUTDOWN_GRACE_MS: env.int(25_000, 0, 3_600_000),
  WORKER_HEALTH_PORT: env.int(3001, 0, 65_535),
  WORKER_ID: z.string().min(1).max(200).default(`${hostname()}-${process.pid}`),
  /** How often the sweeper looks for tasks whose message may be gone. */
  SWEEP_INTERVAL_MS: env.int(10_000, 500, 3_600_000),
  /**
   * How long a task may wait (queued with its queue empty, retrying past due, running past its
   * lease) before the sweeper counts its message as lost. Longer than the outbox relay's lag.
   */
  SWEEP_GRACE_MS: env.int(30_000, 1_000, 86_400_000),
});
export type WorkerConfig = z.infer<typeof workerConfigSchema>;
