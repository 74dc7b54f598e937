/** The states of docs/ARCHITECTURE.md, "Task states". The transitions between them live in task-state-machine.ts. */
export const TASK_STATUSES = [
  'new',
  'scheduled',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** @internal States a task never leaves by itself (a user or admin retry starts it over). */
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
/**
 * @internal States whose tasks still have work ahead, counted by every metrics scrape through the partial
 * `tasks_active_status` index. Not `scheduled`: a million tasks waiting for next month would be counted
 * at every scrape; they cost nothing until due (the promoter probes the earliest one only).
 */
export const ACTIVE_STATUSES: readonly TaskStatus[] = ['new', 'queued', 'running', 'retrying'];

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}
