import { Injectable, Logger } from '@nestjs/common';
import { QueueBrowser, TaskPublisher, Topology, workMessageOf } from '@tasksys/messaging';
import { TaskStateMachine } from '../task-state-machine';
import { isTerminal, type TaskStatus } from '../task-status';

/** States whose work travels as a message: a redriven dead letter of such a task is re-enqueued. */
const ACTIVE_WITH_MESSAGE: readonly TaskStatus[] = ['queued', 'retrying', 'running'];

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
  /** Task still queued, retrying or running: a new work message went through the outbox, then the dead letter was removed. */
  requeued: number;
  /** Task succeeded (or not started yet): dead letter removed. */
  stale: number;
  /** Left in place: not chosen, or malformed (without purgeMalformed). */
  skipped: number;
  /**
   * Left in place: of a task not in the database (deleted by retention, TASK_RETENTION_MS, or from
   * another deployment). Nothing is left to run it again from; the dead letter stays for a human.
   */
  missing: number;
  /** Malformed dead letters removed (purgeMalformed). */
  purged: number;
}

/**
 * Redrive of the dead-letter queue. For each dead letter: its task returns to `queued` through the
 * state machine's retry (the work message goes through the outbox, confirmed by the relay), and only
 * then is the dead letter acked. A dead letter of a task that is still live is never just removed: it
 * may be the task's last message, so a new one is enqueued first. Crashing in between leaves the dead
 * letter; its next redrive enqueues once more, which the claim absorbs.
 */
@Injectable()
export class RedriveDeadLettersCommand {
  private readonly logger = new Logger(RedriveDeadLettersCommand.name);

  constructor(
    private readonly browser: QueueBrowser,
    private readonly topology: Topology,
    private readonly sm: TaskStateMachine,
    private readonly publisher: TaskPublisher,
  ) {}

  async execute(opts: RedriveDeadLettersOptions): Promise<RedriveDeadLettersResult> {
    const chosen = opts.taskIds ? new Set(opts.taskIds.map((id) => id.toLowerCase())) : null;
    const result: RedriveDeadLettersResult = { redriven: 0, requeued: 0, stale: 0, skipped: 0, missing: 0, purged: 0 };
    await this.browser.visit(this.topology.queues.dead, opts.limit, async (m, raw) => {
      if (m.malformed || m.type === null) {
        // A body that is not a task message: kept for a human unless purging was asked for.
        if (opts.purgeMalformed && !chosen) {
          result.purged++;
          return 'ack';
        }
        result.skipped++;
        return 'keep';
      }
      // A bundle's dead letter (the broker dead-lettered it whole) is redriven task by task: only its
      // chosen tasks. Those left (not chosen, or missing) keep a dead letter of their own, published
      // (confirmed) before the bundle's is removed; a crash in between leaves both, which a later
      // redrive absorbs (a redriven task is then live: re-enqueued, and the claim takes one copy).
      const targets = chosen ? m.taskIds.filter((id) => chosen.has(id)) : m.taskIds;
      if (targets.length === 0) {
        result.skipped++;
        return 'keep';
      }
      const left = m.taskIds.filter((id) => !targets.includes(id));
      for (const taskId of targets) {
        const r = await this.sm.retry(taskId, opts.actor);
        if (!r.task) {
          result.missing++;
          left.push(taskId);
        } else if (r.applied) {
          result.redriven++;
        } else if (!isTerminal(r.task.status) && r.task.status !== 'new' && r.task.status !== 'scheduled') {
          // A live task whose message was dead-lettered by the broker (a delivery limit, a rejection):
          // this dead letter may be the last copy of its work, so a new message goes through the
          // outbox first (the claim absorbs it if another copy turns up).
          await this.sm.enqueueAgain([taskId], ACTIVE_WITH_MESSAGE);
          result.requeued++;
        } else {
          result.stale++;
        }
      }
      if (left.length === m.taskIds.length) return 'keep';
      if (left.length > 0) {
        const kept = m.taskIds.filter((id) => left.includes(id));
        await this.publisher.republishDeadLetter(workMessageOf(m.type, kept), raw);
      }
      return 'ack';
    });
    if (result.redriven + result.requeued + result.stale + result.purged + result.missing > 0)
      this.logger.log(`dead letters: ${JSON.stringify(result)} (by ${opts.actor})`);
    return result;
  }
}
