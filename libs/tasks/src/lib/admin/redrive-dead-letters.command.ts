import { Injectable, Logger } from '@nestjs/common';
import { QueueBrowser, Topology } from '@tasksys/messaging';
import { TaskStateMachine } from '../task-state-machine';

export interface RedriveDeadLettersOptions {
  /** Only dead letters of these tasks; all when omitted. */
  taskIds?: string[];
  /** Remove dead letters that are not task messages (otherwise they stay). */
  purgeMalformed?: boolean;
  /** Most dead letters looked at in one call. */
  limit: number;
  /** Recorded in task_events, e.g. `admin:ops`. */
  actor: string;
}

export interface RedriveDeadLettersResult {
  /** Task failed or cancelled -> queued (work message through the outbox), dead letter removed. */
  redriven: number;
  /** Task already queued, running, retrying or finished otherwise: dead letter removed. */
  stale: number;
  /** Left in place: not chosen, malformed (without purgeMalformed), or of an unknown task. */
  skipped: number;
  /** Malformed dead letters removed (purgeMalformed). */
  purged: number;
}

/**
 * Redrive of the dead-letter queue. For each dead letter: its task returns to `queued` through the
 * state machine's retry (the work message goes through the outbox, confirmed by the relay), and only
 * then is the dead letter acked. Crashing in between leaves the dead letter, whose next redrive finds
 * the task queued and removes it as stale.
 */
@Injectable()
export class RedriveDeadLettersCommand {
  private readonly logger = new Logger(RedriveDeadLettersCommand.name);

  constructor(
    private readonly browser: QueueBrowser,
    private readonly topology: Topology,
    private readonly sm: TaskStateMachine,
  ) {}

  async execute(opts: RedriveDeadLettersOptions): Promise<RedriveDeadLettersResult> {
    const chosen = opts.taskIds ? new Set(opts.taskIds.map((id) => id.toLowerCase())) : null;
    const result: RedriveDeadLettersResult = { redriven: 0, stale: 0, skipped: 0, purged: 0 };
    await this.browser.visit(this.topology.queues.dead, opts.limit, async (m) => {
      if (m.malformed) {
        // A body that is not a task message: kept for a human unless purging was asked for.
        if (opts.purgeMalformed && !chosen) {
          result.purged++;
          return 'ack';
        }
        result.skipped++;
        return 'keep';
      }
      const taskId = m.taskId!.toLowerCase();
      if (chosen && !chosen.has(taskId)) {
        result.skipped++;
        return 'keep';
      }
      const r = await this.sm.retry(taskId, opts.actor);
      if (!r.task) {
        result.skipped++; // no such task in this database
        return 'keep';
      }
      if (r.applied) result.redriven++;
      else result.stale++;
      return 'ack';
    });
    if (result.redriven + result.stale + result.purged > 0) this.logger.log(`dead letters: ${JSON.stringify(result)} (by ${opts.actor})`);
    return result;
  }
}
