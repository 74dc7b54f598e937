import { z } from 'zod';
import { env } from '@tasksys/platform';
import type { TaskTypeDefinition } from './task-type';

export const taskTypesConfigSchema = z.object({
  /** Database that `sql.query` tasks read (never the product's own); the type is unavailable when unset. */
  SQL_TARGET_URL: env.optionalUrl(['postgres', 'postgresql']),
  /** Allows `demo.crash`, which kills the worker on purpose (fault-injection only). */
  DEMO_ALLOW_CRASH: env.flag(false),
});

/** @internal The payload of `demo.sleep`. */
export const demoSleepPayload = z.strictObject({
  ms: z.int().min(0).max(3_600_000),
  steps: z.int().min(1).max(1000).optional(),
  failTimes: z.int().min(0).max(100).optional(),
  fatal: z.boolean().optional(),
});
export type DemoSleepPayload = z.infer<typeof demoSleepPayload>;

/** @internal The payload of `demo.crash`. */
export const demoCrashPayload = z.strictObject({
  afterMs: z.int().min(0).max(600_000),
});
export type DemoCrashPayload = z.infer<typeof demoCrashPayload>;

/** @internal The payload of `sql.query`. */
export const sqlQueryPayload = z.strictObject({
  sql: z.string().min(1).max(100_000),
  params: z
    .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
    .max(100)
    .optional(),
  maxRows: z.int().min(1).max(10_000).optional(),
  timeoutMs: z.int().min(100).max(600_000).optional(),
});
export type SqlQueryPayload = z.infer<typeof sqlQueryPayload>;

const backoff = { baseMs: 1000, maxMs: 600_000 };

export const BUILTIN_TASK_TYPES: TaskTypeDefinition[] = [
  {
    type: 'demo.sleep',
    description:
      'Sleeps `ms` in `steps` progress reports; fails its first `failTimes` attempts; `fatal` fails without retry.',
    payload: demoSleepPayload,
    timeoutMs: 3_900_000,
    maxAttempts: 5,
    backoff,
  },
  {
    type: 'demo.crash',
    description: 'Exits the worker process mid-run (fault injection; needs DEMO_ALLOW_CRASH=1).',
    payload: demoCrashPayload,
    timeoutMs: 660_000,
    maxAttempts: 3,
    backoff,
    unavailableReason: (c) => (c.DEMO_ALLOW_CRASH ? null : 'demo.crash is disabled (set DEMO_ALLOW_CRASH=1)'),
  },
  {
    type: 'sql.query',
    description: 'Runs a read-only query against SQL_TARGET_URL with a statement timeout and a row cap.',
    payload: sqlQueryPayload,
    timeoutMs: 660_000,
    maxAttempts: 3,
    backoff,
    unavailableReason: (c) => (c.SQL_TARGET_URL ? null : 'sql.query is disabled (SQL_TARGET_URL is not set)'),
  },
];
