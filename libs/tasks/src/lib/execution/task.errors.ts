import { AppError, ERROR_CODES } from '@tasksys/platform';
import type { TaskError } from '../entities';

/**
 * A handler failure with a stable code that survives the database and the broker.
 * `retryable` decides between the retry tiers and a final failure. The code is the handler's own
 * (`DEMO.FATAL`, `SQL.TIMEOUT`): handlers name their failures; the built-in ones are in ERROR_CODES.
 */
export class TaskFailure extends AppError<string> {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }

  toJSON(): TaskError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** A transient failure: the task is retried after a backoff while it has attempts left. */
export class RetryableError extends TaskFailure {
  constructor(message: string, code: string = ERROR_CODES.TASK_RETRYABLE) {
    super(code, message, true);
  }
}

/** A permanent failure: no further attempt (BullMQ's UnrecoverableError). */
export class UnrecoverableError extends TaskFailure {
  constructor(message: string, code: string = ERROR_CODES.TASK_UNRECOVERABLE) {
    super(code, message, false);
  }
}

/** @internal Why a run's AbortSignal fired; handlers just see `signal.aborted`. */
export type AbortReason = 'cancelled' | 'timeout' | 'lease-lost' | 'shutdown' | 'ended';

/** @internal The reason a run's AbortSignal carries (`signal.reason`). */
export class TaskAbortedError extends Error {
  constructor(readonly reason: AbortReason) {
    super(`run aborted: ${reason}`);
    this.name = 'TaskAbortedError';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * @internal A handler's result or error as JSON PostgreSQL's jsonb accepts: no U+0000 and no lone
 * surrogates (a string cut in the middle of an emoji). One bad value must not fail a batch.
 */
export function toStorableJson<T>(value: T): T {
  const json = JSON.stringify(value ?? null, (_key, v: unknown) =>
    typeof v === 'string' ? v.replace(LONE_SURROGATE, '\uFFFD').replaceAll('\u0000', '') : v,
  );
  return JSON.parse(json) as T;
}

/** @internal Any thrown value as the error stored on the task. Unknown errors are retryable (a bug may be transient). */
export function toTaskError(err: unknown): TaskError {
  return toStorableJson(describeError(err));
}

function describeError(err: unknown): TaskError {
  if (err instanceof TaskFailure) return err.toJSON();
  if (err instanceof TaskAbortedError && err.reason === 'timeout') {
    return { code: ERROR_CODES.TASK_TIMEOUT, message: 'the run exceeded its timeout', retryable: true };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: ERROR_CODES.TASK_HANDLER_ERROR, message: message.slice(0, 2000), retryable: true };
}
