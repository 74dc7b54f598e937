import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import {
  type Delivery,
  HEADERS,
  parseTaskMessage,
  TaskPublisher,
  type TaskMessage,
  Topology,
  taskIdsOf,
  type WorkMessage,
} from '@tasksys/messaging';
import { ERROR_CODES } from '@tasksys/platform';
import type { Task, TaskError } from '../entities';
import { TaskStateMachine } from '../task-state-machine';
import { isTerminal } from '../task-status';
import { DatabaseRetry } from './database-retry';
import { InjectWorkerConfig } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';
import { successorTraceparent } from './run-tracing';
import type { WorkerConfig } from './worker.config';

/** Successors keep the task's priority (a retry or a deferral of a priority-9 task is still one). */
function priorityOf(delivery: Delivery): number | undefined {
  const priority: unknown = delivery.message.properties.priority;
  return typeof priority === 'number' ? priority : undefined;
}

/** Deliveries of one task that hit an unexpected error (a bug) before its message is dead-lettered. */
const MAX_UNEXPECTED_ERRORS = 3;
/** Tasks whose unexpected errors are remembered at most. */
const UNEXPECTED_MEMORY = 10_000;

/**
 * @internal THE ACK RULE (docs/ARCHITECTURE.md, "the ack rule"). A delivery is acked only when,
 * for the task it carries,
 *  (a) the task is terminal in the database: `terminal`, `deadLetter` of a terminal task; or
 *  (b) a successor message for the task has been confirmed by the broker: `retried` (a retry tier),
 *      `defer` (a deferral), `handBack` on quorum queues (a fresh copy), `deadLetter` (the dead letter); or
 *  (c) the task is parked in the database, which then owns its next message: `parked` (held back by
 *      its owner's maxRunning; the statement that frees one of the owner's slots writes its message),
 *      and a task `new` or `scheduled` (its start or its promotion writes one).
 * Nothing else acks. Otherwise the delivery is requeued (the broker keeps the only copy) or, for a
 * message that is no task message at all, rejected so the queue's own dead-letter exchange takes it.
 * `unowned` decides among them for a task this worker does not run.
 */
@Injectable()
export class AckRule {
  private readonly logger = new Logger(AckRule.name);
  private readonly unexpected = new Map<string, number>();
  /** Pauses before a requeue, so a failing publish or a bug cannot spin; tests set them to 0. */
  readonly pauses = { afterFailedDeferral: 500, afterUnexpectedError: 1000 };

  constructor(
    private readonly tasks: TaskStateMachine,
    private readonly publisher: TaskPublisher,
    private readonly topology: Topology,
    private readonly retry: DatabaseRetry,
    private readonly metrics: ExecutionMetrics,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
  ) {}

  /** (a) The task is terminal: its outcome is committed; this delivery has nothing left to do. */
  terminal(delivery: Delivery): void {
    delivery.ack();
  }

  /**
   * (c) The claim held the task back (its owner is at maxRunning): it waits in the database, marked
   * held, and the statement that frees one of its owner's running slots (or raises the limit) writes
   * its next message through the outbox, in the same transaction. So this delivery is acked with no
   * successor: a deferral instead would circle through the broker for as long as the owner is full.
   */
  parked(delivery: Delivery, task: Task): void {
    this.metrics.parked.inc();
    this.logger.debug({ taskId: task.id, msg: `held: ${task.heldReason ?? 'owner limit'}` });
    delivery.ack();
  }

  /**
   * (b) The task is `retrying`: its retry goes to the tier of `delayMs` (confirmed), then this
   * delivery is acked. If the broker refuses, the delivery is requeued; the task waits in `retrying`
   * and the redelivered copy (or the sweeper) claims it once due.
   */
  async retried(delivery: Delivery, message: TaskMessage, attempt: number, delayMs: number): Promise<string | null> {
    try {
      const tier = await this.publisher.publishRetry(message, {
        attempt,
        delayMs,
        priority: priorityOf(delivery),
        traceparent: successorTraceparent(delivery),
      });
      this.metrics.retries.inc({ tier: tier.label });
      delivery.ack();
      return tier.label;
    } catch (err) {
      this.logger.warn({
        taskId: message.taskId,
        attempt,
        msg: `retry not published (${(err as Error).message}); requeueing the delivery`,
      });
      delivery.requeue();
      return null;
    }
  }

  /** (b) A copy that comes back after `delayMs` (rounded down to a tier), confirmed, then ack; else requeue after a pause. */
  async defer(delivery: Delivery, message: WorkMessage, attempt: number, delayMs: number): Promise<void> {
    try {
      await this.publisher.publishRetry(message, {
        attempt,
        delayMs,
        priority: priorityOf(delivery),
        traceparent: successorTraceparent(delivery),
      });
      this.metrics.deferrals.inc();
      delivery.ack();
    } catch (err) {
      this.logger.warn({
        taskIds: taskIdsOf(message),
        attempt,
        msg: `deferral not published (${(err as Error).message}); requeueing`,
      });
      await sleep(this.pauses.afterFailedDeferral);
      delivery.requeue();
    }
  }

  /**
   * A confirmed publish to the dead-letter exchange with the reason, then ack (b, or a for a terminal
   * task). If the broker refuses: a terminal task needs no more deliveries (a), anything else is
   * rejected so the queue's own dead-letter exchange takes it.
   */
  async deadLetter(delivery: Delivery, reason: TaskError, taskIsTerminal = false): Promise<void> {
    try {
      await this.publisher.publishDeadLetter(delivery.message.content, delivery.message.properties, {
        code: reason.code,
        message: reason.message,
        routingKey: delivery.message.fields.routingKey,
      });
      this.metrics.deadLetters.inc({ reason: reason.code });
      this.logger.warn({
        taskId: delivery.message.properties.correlationId ?? null,
        reasonCode: reason.code,
        msg: `dead-lettered: ${reason.code} (${reason.message})`,
      });
      delivery.ack();
    } catch (err) {
      this.logger.warn(`dead letter not published (${(err as Error).message})`);
      if (taskIsTerminal) delivery.ack();
      else delivery.reject();
    }
  }

  /**
   * Gives a delivery back for another run. A requeue is the natural way, but a quorum queue counts
   * each one toward `x-delivery-limit` and dead-letters the message past it: a worker restarted
   * twenty times would turn a live task's only message into a dead letter. There a fresh copy is
   * published (b: confirmed, counting from zero), then the delivery acked; if that fails, requeue.
   */
  async handBack(delivery: Delivery, message: TaskMessage): Promise<void> {
    if (this.topology.queueType !== 'quorum') return delivery.requeue();
    try {
      const headers = delivery.message.properties.headers ?? {};
      await this.publisher.publishTask(message, {
        attempt: Number(headers[HEADERS.attempt] ?? 0) || 0,
        priority: priorityOf(delivery),
        traceparent: successorTraceparent(delivery),
      });
      delivery.ack();
    } catch (err) {
      this.logger.warn({
        taskId: message.taskId,
        msg: `hand-back copy not published (${(err as Error).message}); requeueing`,
      });
      delivery.requeue();
    }
  }

  /**
   * This worker does not run the task (a duplicate, a task running elsewhere, a lost lease, a copy
   * that came early): ack when it is terminal; fail it when its workers died on every attempt;
   * otherwise defer a copy until it may be claimed, then ack. `known`: the row as the caller saw it.
   */
  async unowned(delivery: Delivery, message: TaskMessage, known?: Task): Promise<void> {
    const task = known ?? (await this.retry.untilAnswered(() => this.tasks.find(message.taskId), { outcome: true }));
    if (task === undefined) return this.handBack(delivery, message);
    if (task === null)
      return this.deadLetter(delivery, {
        code: ERROR_CODES.TASK_NOT_FOUND,
        message: `no task ${message.taskId}`,
        retryable: false,
      });
    if (isTerminal(task.status)) {
      this.metrics.duplicates.inc();
      return this.terminal(delivery);
    }
    // Not started, or not due yet: its start (or its promotion when due) queues a message of its own.
    if (task.status === 'new' || task.status === 'scheduled') return delivery.ack();
    // Held back by its owner's maxRunning: the database wakes it (c).
    if ((task.status === 'queued' || task.status === 'retrying') && task.heldSince) return this.parked(delivery, task);
    const leaseLeft = task.leaseExpiresAt ? task.leaseExpiresAt.getTime() - Date.now() : 0;
    if (task.status === 'running' && leaseLeft <= 0 && task.attempt - task.attemptBase >= task.maxAttempts) {
      // Its workers died on every attempt (a crash loop): fail it rather than run it again.
      const error = {
        code: ERROR_CODES.TASK_ABANDONED,
        message: `lease expired on all ${task.maxAttempts} attempts`,
        retryable: false,
      };
      const r = await this.retry.untilAnswered(() => this.tasks.failAbandoned(task.id, error, this.config.WORKER_ID), {
        outcome: true,
      });
      if (r === undefined) return this.handBack(delivery, message);
      if (r.applied) return this.deadLetter(delivery, error, true);
      if (r.task && isTerminal(r.task.status)) return this.unowned(delivery, message, r.task);
      // The database disagrees (its clock says the lease is live, or the row moved on): look again later, not in a loop.
      return this.defer(delivery, message, task.attempt, 0);
    }
    if (task.status === 'retrying' && task.runAfter && task.runAfter.getTime() > Date.now()) {
      // A duplicate or early copy of a retry: it comes back when the backoff is over, not before.
      return this.defer(delivery, message, task.attempt, task.runAfter.getTime() - Date.now());
    }
    return this.defer(delivery, message, task.attempt, Math.max(leaseLeft, 0));
  }

  /**
   * Only a bug (or a statement the database refuses) gets here. The delivery is requeued so nothing
   * is lost, after a pause so it cannot spin; the same task failing this way again and again has its
   * message dead-lettered with the error, where an operator sees it (and redrives it once fixed).
   */
  async unexpectedError(delivery: Delivery, err: unknown): Promise<void> {
    this.logger.error(`unexpected error handling a delivery: ${(err as Error)?.stack ?? err}`);
    const parsed = parseTaskMessage(delivery.message.content);
    const key = parsed.ok ? parsed.message.taskId : String(delivery.message.properties.messageId);
    const count = (this.unexpected.get(key) ?? 0) + 1;
    this.unexpected.delete(key);
    if (count >= MAX_UNEXPECTED_ERRORS) {
      const message = `${count} deliveries failed with an unexpected error: ${(err as Error)?.message ?? String(err)}`;
      return this.deadLetter(delivery, {
        code: ERROR_CODES.WORKER_INTERNAL_ERROR,
        message: message.slice(0, 1000),
        retryable: false,
      });
    }
    this.unexpected.set(key, count);
    if (this.unexpected.size > UNEXPECTED_MEMORY) this.unexpected.delete(this.unexpected.keys().next().value as string);
    await sleep(this.pauses.afterUnexpectedError);
    delivery.requeue();
  }
}
