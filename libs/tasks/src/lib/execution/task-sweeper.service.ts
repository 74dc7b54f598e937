import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { QueueProbe, Topology } from '@tasksys/messaging';
import { TaskStateMachine } from '../task-state-machine';
import { TaskTypeRegistry } from '../task-types';
import { InjectWorkerConfig } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';
import type { WorkerConfig } from './worker.config';

/** Most tasks re-enqueued per kind in one sweep. */
const SWEEP_LIMIT = 1000;
/** Most owners with held tasks looked at in one sweep. */
const HELD_OWNERS_LIMIT = 100;
/** How long a queue must stay empty before its idle queued tasks count as lost (a claim takes milliseconds). */
const CONFIRM_EMPTY_MS = 1000;

/**
 * Broker-side dead-lettering (a retry tier expiring back to the work exchange) is at-most-once
 * on classic queues, and a broker can lose its data. The database decides what is missing:
 * periodically re-enqueue tasks whose message may be gone (docs/ARCHITECTURE.md, "the sweeper"):
 * - `retrying` well past its due time, `running` with a lease long expired;
 * - `queued` for longer than the grace period while the broker reports their queue empty. A queue
 *   with messages ready is a backlog working its way down (a million queued tasks are not a
 *   million lost ones): nothing is re-enqueued until it has drained. Only types this worker
 *   serves, each against its own queues (which this worker declared and consumes).
 * - held tasks (an owner at maxRunning) are not lost: they wait on purpose, and nothing above takes
 *   them. Their wake-up is written by the statement that frees a slot; should one go missing, any
 *   owner with held tasks and room gets them woken here (a no-op while the owner is full).
 * Every worker sweeps; the statements recheck each row under its lock, so two sweepers racing
 * re-enqueue a task once. A duplicate message is absorbed by the claim.
 */
@Injectable()
export class TaskSweeper {
  private readonly logger = new Logger(TaskSweeper.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly tasks: TaskStateMachine,
    private readonly types: TaskTypeRegistry,
    private readonly topology: Topology,
    private readonly probe: QueueProbe,
    private readonly metrics: ExecutionMetrics,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running)
        this.running = this.sweepOnce()
          .then(() => undefined)
          .finally(() => (this.running = null));
    }, this.config.SWEEP_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One sweep; returns how many tasks got a new message. Never throws. */
  async sweepOnce(): Promise<number> {
    const graceMs = this.config.SWEEP_GRACE_MS;
    let total = 0;
    try {
      const woken = await this.tasks.wakeStrandedHeld(HELD_OWNERS_LIMIT);
      if (woken.length > 0) {
        this.logger.warn(`woke ${woken.length} held task(s) whose owner had room and nothing woke them`);
        this.metrics.sweptTasks.inc({ kind: 'held' }, woken.length);
      }
      total += woken.length;
    } catch (err) {
      this.logger.warn(`sweep of held tasks failed (${(err as Error).message})`);
    }
    for (const type of this.topology.served) {
      if (this.types.unavailable(type) !== null) continue;
      try {
        total += await this.sweepType(type, graceMs);
      } catch (err) {
        this.logger.warn(`sweep of ${type} failed (${(err as Error).message})`);
      }
    }
    return total;
  }

  /**
   * One served type, against its own queues. Nothing is re-enqueued while they hold messages ready:
   * that is a backlog draining (whose messages include these tasks' own, or retries come back from
   * their tiers), and a copy per task per grace period would pile up behind it; nor for types this
   * worker does not serve (their workers sweep them; a group that is down must not be flooded).
   */
  private async sweepType(type: string, graceMs: number): Promise<number> {
    const queues = this.topology.queuesOf(type);
    const queuesEmpty = async () =>
      (await Promise.all(queues.map((q) => this.probe.readyMessages(q)))).every((n) => n === 0);
    let total = 0;
    if (await queuesEmpty()) {
      const stranded = await this.tasks.requeueStranded(graceMs, SWEEP_LIMIT, [type]);
      if (stranded.length > 0) {
        this.logger.warn(
          `re-enqueued ${stranded.length} retrying or abandoned ${type} task(s) whose message may be lost`,
        );
        this.metrics.sweptTasks.inc({ kind: 'stranded' }, stranded.length);
      }
      total += stranded.length;
    }
    // Database first, broker second: every candidate's message was confirmed before the broker is
    // asked, so an empty queue means it was delivered (and claimed: no longer queued) or lost.
    const candidates = await this.tasks.findIdleQueued([type], graceMs, SWEEP_LIMIT);
    if (candidates.length === 0 || !(await queuesEmpty())) return total;
    // The last message of a backlog may have been delivered this instant and not claimed yet: look
    // once more a moment later (the re-enqueue then rechecks that each task is still queued).
    await sleep(CONFIRM_EMPTY_MS);
    if (!(await queuesEmpty())) return total;
    const requeued = await this.tasks.requeueLostQueued(candidates, graceMs);
    if (requeued.length > 0) {
      this.logger.warn(
        `re-enqueued ${requeued.length} queued ${type} task(s) whose message the broker lost (${queues.join(', ')} empty)`,
      );
      this.metrics.sweptTasks.inc({ kind: 'queued' }, requeued.length);
    }
    return total + requeued.length;
  }
}
