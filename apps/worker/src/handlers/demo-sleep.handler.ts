import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import {
  type DemoSleepPayload,
  HandlesTask,
  RetryableError,
  type TaskContext,
  type TaskHandler,
  UnrecoverableError,
} from '@tasksys/tasks';
import { HANDLER_ERROR_CODES } from './handler-error-codes';

/** Sleeps in steps with progress; fails on purpose for tests, benchmarks and fault injection. */
@Injectable()
@HandlesTask('demo.sleep')
export class DemoSleepHandler implements TaskHandler<DemoSleepPayload, { sleptMs: number; attempt: number }> {
  async run({ payload, attempt, signal, progress }: TaskContext<DemoSleepPayload>) {
    if (payload.fatal)
      throw new UnrecoverableError('demo.sleep asked to fail for good', HANDLER_ERROR_CODES.DEMO_FATAL);
    if (attempt <= (payload.failTimes ?? 0)) {
      throw new RetryableError(
        `demo.sleep asked to fail attempt ${attempt} of ${payload.failTimes}`,
        HANDLER_ERROR_CODES.DEMO_FAIL_TIMES,
      );
    }
    const steps = payload.steps ?? 1;
    for (let step = 1; step <= steps; step++) {
      await sleep(payload.ms / steps, undefined, { signal });
      if (steps > 1) await progress((step / steps) * 100, `step ${step} of ${steps}`);
    }
    return { sleptMs: payload.ms, attempt };
  }
}
