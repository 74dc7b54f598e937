import { z } from 'zod';
import { env } from '@tasksys/platform';

/** The cron schedules' variables, read by every api and worker (each runs a firer). */
export const schedulesConfigSchema = z.object({
  /** Run the schedule firer in this process. Every replica may: a fire is one task whatever the count. */
  SCHEDULER_ENABLED: env.flag(true),
  /**
   * A fire time older than this when it is seen (everything was down) is missed: the schedule fires once,
   * for its latest missed fire time, and goes on from now, instead of once per missed slot. Fire times
   * late by less (a busy process) are each fired, in order.
   */
  SCHEDULE_MISFIRE_GRACE_MS: env.int(5000, 0, 86_400_000),
});
export type SchedulesConfig = z.infer<typeof schedulesConfigSchema>;
