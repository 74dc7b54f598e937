import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import {
  type Delivery,
  HEADERS,
  parseWorkMessage,
  type TaskBundle,
  taskMessage,
  TaskPublisher,
  workMessageOf,
} from '@tasksys/messaging';
import { AckRule } from './ack-rule';
import { InjectWorkerConfig } from './execution.constants';
import { successorTraceparent } from './run-tracing';
import { TaskExecutor } from './task-executor';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskSlots } from './task-slots';
import type { WorkerConfig } from './worker.config';

/** A bundle this worker cannot run (no handler, missing setting) comes back about this much later. */
const UNSERVABLE_DEFER_MS = 10_000;
/** Before a bundle whose remainder could not be sent on is requeued, so a refusing broker cannot spin it. */
const PAUSE_BEFORE_REQUEUE_MS = 500;

/**
 * Where every work delivery enters the worker (docs/ARCHITECTURE.md, "Bundles").
 *
 * A single-task delivery goes to the executor as it is. A bundle's delivery is split: each task gets
 * a delivery of its own (its body that task's single-task message, its properties the bundle's),
 * which the executor runs and the ack rule settles exactly as a single task's: claim, fencing,
 * retries, deferrals and dead letters stay per task. The bundle's delivery is acked only when every
 * task in it is settled: terminal, parked in the database, or with a confirmed successor message
 * of its own (the ack rule, generalised). A task that asks for its message back (requeue: a
 * shutdown, a database that did not answer; or reject) gets a confirmed successor instead: one
 * message for all such tasks of the bundle, then the ack. If that publish fails the whole bundle
 * is requeued, and the tasks already settled come back as duplicates, which the claim absorbs.
 *
 * Slots: WORKER_CONCURRENCY counts tasks. Each task takes a slot while it is handled; a bundle
 * waits for a free one, takes as many as are free (up to its size) and sends the rest on at once,
 * confirmed, as a message of their own (their successor), so a worker never sits on tasks it cannot
 * start while another could run them. The broker's prefetch follows the free slots (`onPrefetch`).
 */
@Injectable()
export class WorkIntake {
  private readonly logger = new Logger(WorkIntake.name);
  private readonly slots: TaskSlots;
  private readonly pending = new Set<Promise<void>>();
  private stopping = false;
  /** Tasks of deliveries waiting for a slot. */
  private waitingTasks = 0;
  /** Tasks per delivery lately (a moving average), to turn free slots into deliveries. */
  private tasksPerDelivery = 1;
  private reportedPrefetch = 0;
  private prefetchSink: ((prefetch: number) => void) | null = null;

  constructor(
    private readonly executor: TaskExecutor,
    private readonly ackRule: AckRule,
    private readonly publisher: TaskPublisher,
    private readonly handlers: TaskHandlerRegistry,
    @InjectWorkerConfig() config: WorkerConfig,
  ) {
    this.slots = new TaskSlots(config.WORKER_CONCURRENCY);
  }

  /**
   * Prefetch counted in tasks: `sink` is told how many deliveries the broker may have unacked with
   * this worker (the consumer's basic.qos): those it holds, plus as many as its free slots would
   * fill at the tasks per delivery seen lately. Bundles then arrive as fast as slots free up and no
   * faster, so a worker does not sit on tasks it cannot start.
   */
  onPrefetch(sink: (prefetch: number) => void): void {
    this.prefetchSink = sink;
    this.reportPrefetch();
  }

  /** Entry point for every work delivery. Never throws. */
  handle(delivery: Delivery): Promise<void> {
    const parsed = parseWorkMessage(delivery.message.content);
    const bundle = parsed.ok && 'taskIds' in parsed.message ? parsed.message : null;
    this.tasksPerDelivery += ((bundle ? bundle.taskIds.length : 1) - this.tasksPerDelivery) * 0.2;
    const work = bundle ? this.bundle(delivery, bundle) : this.single(delivery);
    const tracked = work
      .catch((err: Error) => this.logger.error(`work delivery: ${err.stack ?? err.message}`))
      .finally(() => {
        this.pending.delete(tracked);
        this.reportPrefetch();
      });
    this.pending.add(tracked);
    this.reportPrefetch();
    return tracked;
  }

  private reportPrefetch(): void {
    if (!this.prefetchSink) return;
    const free = this.slots.size - this.slots.inUse() - this.waitingTasks;
    const more = Math.max(0, Math.floor(free / Math.max(1, this.tasksPerDelivery)));
    const prefetch = Math.min(this.slots.size, Math.max(1, this.pending.size + more));
    if (prefetch === this.reportedPrefetch) return;
    this.reportedPrefetch = prefetch;
    this.prefetchSink(prefetch);
  }

  /** Takes slots for `want` tasks (see TaskSlots.take), counting them as waiting meanwhile. */
  private async takeSlots(want: number): Promise<number> {
    this.waitingTasks += want;
    try {
      return await this.slots.take(want);
    } finally {
      this.waitingTasks -= want;
    }
  }

  /** Tasks taking a slot now (running, claiming or settling). */
  tasksInFlight(): number {
    return this.slots.inUse();
  }

  /**
   * Graceful shutdown, after the consumer stopped: deliveries still waiting for a slot go back to
   * the queue unstarted, the executor drains its runs within `graceMs`, then every bundle settles.
   */
  async drain(graceMs: number): Promise<void> {
    this.stopping = true;
    this.slots.refuseWaiting();
    await this.executor.drain(graceMs);
    await Promise.allSettled([...this.pending]);
  }

  private async single(delivery: Delivery): Promise<void> {
    if ((await this.takeSlots(1)) === 0) return delivery.requeue();
    try {
      await this.executor.handle(delivery);
    } finally {
      this.slots.give(1);
    }
  }

  private async bundle(delivery: Delivery, bundle: TaskBundle): Promise<void> {
    const unavailable = this.handlers.whyNotRunnable(bundle.type);
    if (unavailable) {
      // Not claimed, so no attempt is spent: another worker (or this one, once configured) runs them.
      this.logger.warn({ type: bundle.type, tasks: bundle.taskIds.length, msg: `bundle deferred: ${unavailable}` });
      return this.ackRule.defer(delivery, bundle, 0, UNSERVABLE_DEFER_MS);
    }
    const taken = await this.takeSlots(bundle.taskIds.length);
    if (taken === 0) return delivery.requeue();
    let ids = bundle.taskIds;
    if (taken < ids.length) {
      try {
        await this.sendOn(delivery, bundle.type, ids.slice(taken));
        ids = ids.slice(0, taken);
      } catch (err) {
        // Nothing of it was claimed: all of it goes back.
        this.slots.give(taken);
        this.logger.warn(`bundle remainder not published (${(err as Error).message}); requeueing the bundle`);
        await sleep(PAUSE_BEFORE_REQUEUE_MS);
        return delivery.requeue();
      }
    }
    const settled: ('ack' | 'back' | undefined)[] = ids.map(() => undefined);
    await Promise.all(
      ids.map((id, i) =>
        this.executor
          .handle(this.taskDelivery(delivery, bundle.type, id, i, settled), taskMessage(id, bundle.type))
          .finally(() => this.slots.give(1)),
      ),
    );
    // A task the executor left unsettled (a bug) is given back with the others, never acked.
    const back = ids.filter((_, i) => settled[i] !== 'ack');
    if (back.length === 0) return delivery.ack();
    try {
      await this.sendOn(delivery, bundle.type, back);
      delivery.ack();
    } catch (err) {
      this.logger.warn(
        `successor of ${back.length} task(s) of a bundle not published (${(err as Error).message}); requeueing the bundle`,
      );
      if (!this.stopping) await sleep(PAUSE_BEFORE_REQUEUE_MS);
      delivery.requeue();
    }
  }

  /** A confirmed message of `ids` to the work exchange, with the bundle's priority, attempt header and trace. */
  private sendOn(delivery: Delivery, type: string, ids: string[]): Promise<void> {
    const { headers, priority } = delivery.message.properties;
    return this.publisher.publishTask(workMessageOf(type, ids), {
      attempt: Number(headers?.[HEADERS.attempt] ?? 0) || 0,
      priority: typeof priority === 'number' ? priority : undefined,
      traceparent: successorTraceparent(delivery),
    });
  }

  /** The delivery of one task of a bundle: settling it records how, the bundle settles once all have. */
  private taskDelivery(
    bundle: Delivery,
    type: string,
    taskId: string,
    index: number,
    settled: ('ack' | 'back' | undefined)[],
  ): Delivery {
    const { fields, properties } = bundle.message;
    const message = {
      content: Buffer.from(JSON.stringify(taskMessage(taskId, type))),
      fields,
      properties: { ...properties, correlationId: taskId, messageId: `${String(properties.messageId)}/${index}` },
    };
    const settle = (how: 'ack' | 'back') => {
      if (settled[index] === undefined) settled[index] = how;
      else this.logger.warn(`task ${taskId} of a bundle settled twice; keeping the first`);
    };
    return { message, ack: () => settle('ack'), reject: () => settle('back'), requeue: () => settle('back') };
  }
}
