/**
 * The failure codes of this worker's handlers. Handlers name their own failures (TaskFailure keeps
 * the code open); the built-in ones are ERROR_CODES of @tasksys/platform. They are as stable: stored
 * on the task (`error.code`) and carried by its dead letter (`x-reason-code`), so never change one.
 */
export const HANDLER_ERROR_CODES = {
  /** demo.sleep with `fatal`. */
  DEMO_FATAL: 'DEMO.FATAL',
  /** demo.sleep failing its first `failTimes` attempts. */
  DEMO_FAIL_TIMES: 'DEMO.FAIL_TIMES',
  DEMO_CRASH_DISABLED: 'DEMO.CRASH_DISABLED',
  /** SQL_TARGET_URL is not set on the worker that got the task. */
  SQL_DISABLED: 'SQL.DISABLED',
  SQL_UNREACHABLE: 'SQL.UNREACHABLE',
  /** The session on the target is not the read-only, limited one the worker asked for. */
  SQL_SESSION_UNSAFE: 'SQL.SESSION_UNSAFE',
  SQL_RESULT_TOO_LARGE: 'SQL.RESULT_TOO_LARGE',
  SQL_TIMEOUT: 'SQL.TIMEOUT',
  SQL_TRANSIENT: 'SQL.TRANSIENT',
  SQL_ERROR: 'SQL.ERROR',
  SQL_CONNECTION: 'SQL.CONNECTION',
} as const;
