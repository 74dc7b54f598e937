import { InitialSchema1763700000000 } from './1763700000000-initial-schema';
import { LeanTaskIndexes1763800000000 } from './1763800000000-lean-task-indexes';
import { RateLimitCounters1763900000000 } from './1763900000000-rate-limit-counters';
import { RoutingByType1764000000000 } from './1764000000000-routing-by-type';
import { ScheduledTasks1764100000000 } from './1764100000000-scheduled-tasks';
import { Retention1764400000000 } from './1764400000000-retention';

/** @internal Append-only: add new migrations at the end, never edit a released one. */
export const TASKS_MIGRATIONS = [
  InitialSchema1763700000000,
  LeanTaskIndexes1763800000000,
  RateLimitCounters1763900000000,
  RoutingByType1764000000000,
  ScheduledTasks1764100000000,
  Retention1764400000000,
];
