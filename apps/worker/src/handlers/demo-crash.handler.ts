import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import {
  type DemoCrashPayload,
  HandlesTask,
  type TaskContext,
  type TaskHandler,
  type TaskTypesConfig,
  UnrecoverableError,
} from '@tasksys/tasks';
import { TASK_TYPES_CONFIG } from '../worker.constants';
import { HANDLER_ERROR_CODES } from './handler-error-codes';

/** Kills its own worker process mid-run (SIGKILL: no shutdown hooks), for fault-injection tests. */
@Injectable()
@HandlesTask('demo.crash')
export class DemoCrashHandler implements TaskHandler<DemoCrashPayload, never> {
  constructor(@Inject(TASK_TYPES_CONFIG) private readonly config: TaskTypesConfig) {}

  async run({ payload, signal }: TaskContext<DemoCrashPayload>): Promise<never> {
    if (!this.config.DEMO_ALLOW_CRASH)
      throw new UnrecoverableError('demo.crash is disabled on this worker', HANDLER_ERROR_CODES.DEMO_CRASH_DISABLED);
    await sleep(payload.afterMs, undefined, { signal });
    process.kill(process.pid, 'SIGKILL');
    return new Promise<never>(() => undefined);
  }
}
