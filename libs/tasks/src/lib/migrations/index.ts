import { InitialSchema1763700000000 } from './1763700000000-initial-schema';
import { LeanTaskIndexes1763800000000 } from './1763800000000-lean-task-indexes';
import { RateLimitCounters1763900000000 } from './1763900000000-rate-limit-counters';
import { RoutingByType1764000000000 } from './1764000000000-routing-by-type';
import { ScheduledTasks1764100000000 } from './1764100000000-scheduled-tasks';
import { Schedules1764200000000 } from './1764200000000-schedules';
import { OwnerLimits1764300000000 } from './1764300000000-owner-limits';
import { Retention1764400000000 } from './1764400000000-retention';
import { Webhooks1764500000000 } from './1764500000000-webhooks';
import { ResumableStream1764500000001 } from './1764500000001-resumable-stream';
import { ScheduledTraceparent1764600000000 } from './1764600000000-scheduled-traceparent';
import { LeanTaskWrites1764700000000 } from './1764700000000-lean-task-writes';

/** @internal Append-only: add new migrations at the end, never edit a released one. */
export const TASKS_MIGRATIONS = [
  InitialSchema1763700000000,
  LeanTaskIndexes1763800000000,
  RateLimitCounters1763900000000,
  RoutingByType1764000000000,
  ScheduledTasks1764100000000,
  Schedules1764200000000,
  OwnerLimits1764300000000,
  Retention1764400000000,
  Webhooks1764500000000,
  ResumableStream1764500000001,
  ScheduledTraceparent1764600000000,
  LeanTaskWrites1764700000000,
];
