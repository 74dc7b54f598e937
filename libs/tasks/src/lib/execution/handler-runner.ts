import { Injectable } from '@nestjs/common';
import { ERROR_CODES } from '@tasksys/platform';
import type { Task, TaskError } from '../entities';
import { TaskStateMachine } from '../task-state-machine';
import { TaskTypeRegistry } from '../task-types';
import { InjectWorkerConfig } from './execution.constants';
import { LeaseKeeper } from './lease-keeper';
import type { TaskContext } from './task-handler';
import { TaskHandlerRegistry } from './task-handler.registry';
import { type AbortReason, TaskAbortedError, toStorableJson, toTaskError } from './task.errors';
import type { WorkerConfig } from './worker.config';

/** @internal How one run ended, for the executor to record and settle. */
export type RunOutcome =
  | { kind: 'succeeded'; result: unknown }
  | { kind: 'failed'; error: TaskError }
  | { kind: 'aborted'; reason: AbortReason };

/** Signals a run that is over (whatever its handler still does is ignored); one instance, not a stack capture per task. */
const RUN_ENDED = new TaskAbortedError('ended');

/**
 * @internal Runs a task's handler once: the payload checked against its type, an AbortSignal that
 * fires on cancel, timeout, lost lease or shutdown (through the LeaseKeeper), and a progress
 * reporter fenced by the run's attempt. A handler that ignores its signal is not waited for: its
 * late writes are fenced out.
 */
@Injectable()
export class HandlerRunner {
  constructor(
    private readonly handlers: TaskHandlerRegistry,
    private readonly types: TaskTypeRegistry,
    private readonly tasks: TaskStateMachine,
    private readonly leases: LeaseKeeper,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  async run(task: Task): Promise<RunOutcome> {
    const token = task.attempt;
    const handler = this.handlers.get(task.type);
    if (!handler) {
      // Checked before the claim; only a task whose row names another type than its message gets here.
      return {
        kind: 'failed',
        error: {
          code: ERROR_CODES.TASK_NO_HANDLER,
          message: `this worker has no handler for ${task.type}`,
          retryable: false,
        },
      };
    }
    const checked = this.types.check(task.type, task.payload);
    if (!checked.ok) {
      return {
        kind: 'failed',
        error: { code: ERROR_CODES.TASK_INVALID_PAYLOAD, message: checked.message, retryable: false },
      };
    }

    const controller = new AbortController();
    let abortedFor: AbortReason | null = null;
    const abort = (reason: AbortReason) => {
      if (abortedFor) return;
      abortedFor = reason;
      controller.abort(new TaskAbortedError(reason));
    };
    const untrack = this.leases.track(task.id, token, abort);
    const timeout = setTimeout(() => abort('timeout'), task.timeoutMs);
    const ctx: TaskContext = {
      taskId: task.id,
      type: task.type,
      payload: checked.payload,
      attempt: token - task.attemptBase,
      signal: controller.signal,
      progress: async (percent, message) => {
        const { WORKER_ID, WORKER_LEASE_MS } = this.config;
        const owned = await this.tasks.progress(task.id, token, WORKER_ID, percent, message ?? null, WORKER_LEASE_MS);
        if (!owned) abort('lease-lost');
        return owned;
      },
    };

    const aborted = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
    );
    try {
      const result = await Promise.race([handler.run(ctx), aborted]);
      if (abortedFor) return { kind: 'aborted', reason: abortedFor };
      return { kind: 'succeeded', result: toStorableJson(result) };
    } catch (err) {
      if (abortedFor && abortedFor !== 'timeout') return { kind: 'aborted', reason: abortedFor };
      return { kind: 'failed', error: toTaskError(abortedFor === 'timeout' ? new TaskAbortedError('timeout') : err) };
    } finally {
      clearTimeout(timeout);
      untrack();
      aborted.catch(() => undefined);
      if (!controller.signal.aborted) controller.abort(RUN_ENDED);
    }
  }
}
