import { Inject, Injectable, Logger } from '@nestjs/common';
import { TaskStateMachine } from '../task-state-machine';
import { WORKER_CONFIG } from './execution.constants';
import type { WorkerConfig } from './worker.config';

/**
 * Broker-side dead-lettering (a retry tier expiring back to the work exchange) is at-most-once
 * on classic queues, and a broker can lose its data. The database decides what is missing:
 * periodically re-enqueue tasks whose message may be gone (DESIGN.md section 6).
 */
@Injectable()
export class TaskSweeper {
  private readonly logger = new Logger(TaskSweeper.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly tasks: TaskStateMachine,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.sweepOnce().then(() => undefined).finally(() => (this.running = null));
    }, this.config.SWEEP_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  async sweepOnce(): Promise<number> {
    try {
      // Grace: well past the moment the message should have come back.
      const ids = await this.tasks.requeueStranded(Math.max(30_000, this.config.WORKER_LEASE_MS * 2), 1000);
      if (ids.length > 0) this.logger.warn(`re-enqueued ${ids.length} task(s) whose message may be lost`);
      return ids.length;
    } catch (err) {
      this.logger.warn(`sweep failed (${(err as Error).message})`);
      return 0;
    }
  }
}
