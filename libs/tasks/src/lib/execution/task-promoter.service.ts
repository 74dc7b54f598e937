import { Injectable, Logger } from '@nestjs/common';
import { Topology } from '@tasksys/messaging';
import { TaskStateMachine } from '../task-state-machine';
import { InjectWorkerConfig } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';
import type { WorkerConfig } from './worker.config';

/** Most tasks promoted by one statement; a full batch is followed by the next at once. */
const PROMOTE_BATCH = 1000;
/**
 * Longest sleep between rounds. A task submitted while the promoter sleeps toward a later due time is
 * seen at the next round: at most this late, plus the relay, the broker and the claim. Measured
 * (apps/worker/src/scheduled.processes.e2e-spec.ts): see the README, "Delayed start".
 */
export const PROMOTE_MAX_SLEEP_MS = 250;
/** Shortest sleep: a due time the database's clock is a hair short of is retried soon, never in a spin. */
const PROMOTE_MIN_SLEEP_MS = 5;
/** Sleep after a failed round (database unreachable): the next round catches up on everything due. */
const PROMOTE_FAILURE_SLEEP_MS = 1000;

/**
 * Delayed start: moves `scheduled` tasks of the types this worker serves to `queued` when they are
 * due, with their work messages in the outbox, in one statement per batch
 * (`TaskStateMachine.promoteDue`), then tells the worker so its outbox relay sends them at once. It
 * sleeps until the earliest due task, at most PROMOTE_MAX_SLEEP_MS; a round with nothing due is one
 * descent of the partial index `tasks_scheduled_due` and writes nothing, however many tasks wait for
 * later (`NEXT_DUE_SQL`; EXPLAIN with 100,000 waiting in task-state-machine.int-spec.ts). Every
 * worker runs one; rows are locked with SKIP LOCKED, so promoters never queue a task twice. The state
 * is all in PostgreSQL: a worker killed mid-round loses nothing, the next round of any promoter
 * queues what is due.
 */
@Injectable()
export class TaskPromoter {
  private readonly logger = new Logger(TaskPromoter.name);
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private onPromoted: () => void = () => undefined;
  private failing = false;

  constructor(
    private readonly tasks: TaskStateMachine,
    private readonly topology: Topology,
    private readonly metrics: ExecutionMetrics,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  /** Starts the loop (idempotent). `onPromoted` runs after every round that queued tasks: wake the outbox relay. */
  start(onPromoted?: () => void): void {
    if (this.loop) return;
    this.stopping = false;
    if (onPromoted) this.onPromoted = onPromoted;
    this.loop = this.run();
  }

  /** Stops after the round in flight (its statement commits or not; nothing is half done). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await this.loop;
    this.loop = null;
  }

  /**
   * One round: one probe for the earliest due task; when one is due, promotes in batches until none is
   * left. Returns how many it queued and how long to sleep. Never throws.
   */
  async promoteOnce(): Promise<{ promoted: number; sleepMs: number }> {
    const types = this.topology.served;
    let promoted = 0;
    try {
      let nextDueInMs = await this.tasks.nextDueInMs(types);
      while (nextDueInMs !== null && nextDueInMs <= 0 && !this.stopping) {
        const round = await this.tasks.promoteDue(types, PROMOTE_BATCH, this.config.WORKER_ID);
        promoted += round.promoted.length;
        for (const task of round.promoted) {
          if (task.runAt)
            this.metrics.promotionLateness.observe(
              { type: task.type },
              Math.max(0, task.updatedAt.getTime() - task.runAt.getTime()) / 1000,
            );
        }
        if (round.promoted.length > 0) this.onPromoted();
        // A full batch: more may be due. Otherwise the statement's own probe says when the next one is
        // (rows due but locked by another promoter are that promoter's).
        nextDueInMs = round.promoted.length >= PROMOTE_BATCH ? 0 : (round.nextDueInMs ?? null);
        if (round.promoted.length < PROMOTE_BATCH && nextDueInMs !== null && nextDueInMs <= 0) break;
      }
      if (this.failing) this.logger.log('promoting scheduled tasks again');
      this.failing = false;
      const sleepMs = Math.min(nextDueInMs ?? PROMOTE_MAX_SLEEP_MS, PROMOTE_MAX_SLEEP_MS);
      return { promoted, sleepMs: Math.max(PROMOTE_MIN_SLEEP_MS, Math.ceil(sleepMs)) };
    } catch (err) {
      if (!this.failing) this.logger.warn(`promoting scheduled tasks failed (${(err as Error).message}); retrying`);
      this.failing = true;
      return { promoted, sleepMs: PROMOTE_FAILURE_SLEEP_MS };
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const { sleepMs } = await this.promoteOnce();
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, sleepMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = null;
    }
  }
}
