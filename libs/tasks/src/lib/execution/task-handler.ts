import { DiscoveryService } from '@nestjs/core';

/** What a handler gets for one run. */
export interface TaskContext<P = unknown> {
  taskId: string;
  type: string;
  payload: P;
  /** 1 for the first run that counts against maxAttempts, 2 for the first retry, ... */
  attempt: number;
  /** Aborted on cancel, timeout, lost lease or shutdown: stop promptly and throw. */
  signal: AbortSignal;
  /** Records progress (0-100) and extends the lease; resolves false if the run no longer owns the task. */
  progress(percent: number, message?: string): Promise<boolean>;
}

/** A provider that runs one task type. Return a JSON-serialisable result or throw (see task.errors.ts). */
export interface TaskHandler<P = unknown, R = unknown> {
  run(ctx: TaskContext<P>): Promise<R>;
}

/** Marks a provider as the handler of a task type: `@HandlesTask('demo.sleep')`. */
export const HandlesTask = DiscoveryService.createDecorator<string>();
