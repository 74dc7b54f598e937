/** Exit codes scripts can branch on (documented in `tasksys --help` and the README). */
export const EXIT = {
  OK: 0,
  /** The api refused (its message on stderr), it could not be reached, or the arguments were wrong. */
  ERROR: 1,
  /** `--wait` / `watch`: the task ended failed. */
  TASK_FAILED: 3,
  /** `--wait` / `watch`: the task ended cancelled. */
  TASK_CANCELLED: 4,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success (with --wait and for watch: the task succeeded)
  1  error: the api's message on stderr (bad key, unknown task, invalid payload), the api unreachable, bad arguments
  3  --wait / watch: the task failed
  4  --wait / watch: the task was cancelled`;

/** The exit code of a task's terminal status. */
export function exitCodeOf(status: string): number {
  if (status === 'failed') return EXIT.TASK_FAILED;
  if (status === 'cancelled') return EXIT.TASK_CANCELLED;
  return EXIT.OK;
}
