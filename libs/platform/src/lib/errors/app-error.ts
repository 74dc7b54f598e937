import type { ErrorCode } from './error-codes';

/**
 * The base of every error this system defines: a stable `code` (from ERROR_CODES) that survives the
 * database, the broker and HTTP, and, when the error is about one input, the `field` at fault. What
 * a code means to a transport (an HTTP status) is that transport's business, never the error's.
 *
 * `Code` stays open only for handler failures, whose codes the handlers define (TaskFailure).
 */
export abstract class AppError<Code extends string = ErrorCode> extends Error {
  abstract readonly code: Code;
  /** The input at fault (`payload.ms`, `cursor`), when there is one. */
  readonly field?: string;

  constructor(message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options.field !== undefined) this.field = options.field;
  }
}
