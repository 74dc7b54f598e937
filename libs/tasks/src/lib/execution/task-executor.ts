import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Delivery, HEADERS, retryDelayMs, TaskPublisher, type TaskMessage, Topology } from '@tasksys/messaging';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { isTransientDatabaseError } from '../database-errors';
import { Task, type TaskError } from '../entities';
import { TaskStateMachine, type TransitionResult } from '../task-state-machine';
import { isTerminal } from '../task-status';
import { TaskTypeRegistry } from '../task-types';
import { type AbortReason, TaskAbortedError, toStorableJson, toTaskError } from './task.errors';
import type { TaskContext } from './task-handler';
import { TaskHandlerRegistry } from './task-handler.registry';
import { MicroBatcher } from './micro-batcher';
import { parseTaskMessage } from './task-message.parser';

const NOT_FOUND: TransitionResult = { applied: false, task: null };
const SETTLE_AFTER_GRACE_MS = 10_000;
/** A task this worker cannot run (no handler, missing setting) comes back about this much later. */
const UNSERVABLE_DEFER_MS = 10_000;
/** Deliveries of one task that hit an unexpected error (a bug) before its message is dead-lettered. */
const MAX_UNEXPECTED_ERRORS = 3;

/** Signals a run that is over (whatever its handler still does is ignored); one instance, not a stack capture per task. */
const RUN_ENDED = new TaskAbortedError('ended');

import type { WorkerConfig } from './worker.config';
import { WORKER_CONFIG } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';

interface ActiveRun {
  token: number;
  abort(reason: AbortReason): void;
}

/** Claims and completions of concurrent deliveries share statements (see MicroBatcher). */
const BATCH_MAX_ITEMS = 200;
const BATCH_MAX_IN_FLIGHT = 1;

type Outcome = { kind: 'succeeded'; result: unknown } | { kind: 'failed'; error: TaskError } | { kind: 'aborted'; reason: AbortReason };

/**
 * THE ACK RULE (DESIGN.md section 6). A delivery is acked only when
 *  (a) its task is terminal in the database, or
 *  (b) a successor message for the task (a retry tier, a deferral, a dead letter) is confirmed by the broker.
 * Otherwise it is requeued (shutdown, broker trouble) or held while the database is unreachable.
 * Every write is fenced by the run's attempt number, so a run that lost its lease writes nothing.
 */
@Injectable()
export class TaskExecutor {
  private readonly logger = new Logger(TaskExecutor.name);
  private readonly runs = new Map<string, ActiveRun>();
  /** Tasks this process holds a claim on (claimed or adopted, until settled), with a count per overlapping run. */
  private readonly held = new Map<string, number>();
  /** Unexpected errors per task id, so a bug cannot redeliver one message forever. */
  private readonly unexpected = new Map<string, number>();
  private readonly pending = new Set<Promise<void>>();
  private shuttingDown = false;
  /** After the grace period, how long settling may still wait for the database before requeueing anyway. */
  private giveUpAt = Number.POSITIVE_INFINITY;
  private consuming = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly claims: MicroBatcher<string, TransitionResult>;
  private readonly completions: MicroBatcher<{ id: string; token: number; result: unknown }, TransitionResult>;

  constructor(
    private readonly tasks: TaskStateMachine,
    private readonly publisher: TaskPublisher,
    private readonly topology: Topology,
    private readonly types: TaskTypeRegistry,
    private readonly handlers: TaskHandlerRegistry,
    private readonly db: DataSource,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly metrics: ExecutionMetrics,
  ) {
    metrics.observeInFlight(() => this.pending.size);
    this.claims = new MicroBatcher({
      maxItems: BATCH_MAX_ITEMS,
      maxInFlight: BATCH_MAX_IN_FLIGHT,
      key: (id) => id,
      run: (ids) => this.tasks.claimMany(ids, config.WORKER_ID, config.WORKER_LEASE_MS),
    });
    this.completions = new MicroBatcher({
      maxItems: BATCH_MAX_ITEMS,
      maxInFlight: BATCH_MAX_IN_FLIGHT,
      key: (run) => run.id,
      run: (runs) => this.tasks.succeedMany(runs, config.WORKER_ID),
    });
  }

  /** Set by the transport while its consumer is subscribed; readiness reports it. */
  setConsuming(consuming: boolean): void {
    this.consuming = consuming;
    if (consuming && !this.heartbeatTimer) {
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.max(200, Math.floor(this.config.WORKER_LEASE_MS / 3)));
    }
  }

  isConsuming(): boolean {
    return this.consuming;
  }

  /** Deliveries being handled right now (claiming, running or settling). */
  inFlight(): number {
    return this.pending.size;
  }

  /** Entry point for every work delivery. Never throws. */
  handle(delivery: Delivery): Promise<void> {
    const done = this.process(delivery).catch((err) => this.onUnexpectedError(delivery, err));
    const tracked = done.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }

  /**
   * A control message: abort the local run of this task, if any, and only the attempt it names; a
   * late signal for an earlier attempt never aborts a newer run (a signal without one is older).
   */
  cancelLocal(taskId: string, attempt?: number): void {
    const run = this.runs.get(taskId);
    if (run && (attempt === undefined || run.token === attempt)) run.abort('cancelled');
  }

  /**
   * Graceful shutdown, after the consumer stopped: let in-flight runs finish within `graceMs`,
   * then abort the rest; aborted runs release their lease and requeue their delivery.
   */
  async drain(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.pending]), sleep(Math.min(250, Math.max(1, deadline - Date.now())))]);
    }
    this.shuttingDown = true;
    this.giveUpAt = Date.now() + SETTLE_AFTER_GRACE_MS;
    if (this.pending.size > 0) {
      this.logger.warn(`grace period over: handing ${this.runs.size} running task(s) back`);
      for (const run of this.runs.values()) run.abort('shutdown');
      await Promise.allSettled([...this.pending]);
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /**
   * One statement extends the leases of every run in this process; a run whose row no longer
   * matches (cancelled, taken over) is aborted. A failed heartbeat is only logged: the lease
   * has two more periods to go.
   */
  private async heartbeat(): Promise<void> {
    const runs = [...this.runs.entries()].map(([id, run]) => ({
      id,
      token: run.token,
    }));
    if (runs.length === 0) return;
    try {
      const owned = await this.tasks.heartbeatMany(runs, this.config.WORKER_ID, this.config.WORKER_LEASE_MS);
      for (const { id, token } of runs) {
        const run = this.runs.get(id);
        if (run && run.token === token && !owned.has(id)) run.abort('lease-lost');
      }
    } catch (err) {
      this.logger.warn(`heartbeat of ${runs.length} run(s) failed (${(err as Error).message})`);
    }
  }

  private async process(delivery: Delivery): Promise<void> {
    const parsed = parseTaskMessage(delivery.message.content);
    if (!parsed.ok) {
      return this.deadLetter(delivery, {
        code: parsed.code,
        message: parsed.reason,
      });
    }
    const message = parsed.message;
    const unavailable = this.handlers.get(message.type)
      ? this.types.unavailable(message.type)
      : `this worker has no handler for ${message.type}`;
    if (unavailable) {
      // Not claimed, so no attempt is spent: another worker (or this one, once configured) runs it.
      this.logger.warn({
        taskId: message.taskId,
        type: message.type,
        msg: `deferred: ${unavailable}`,
      });
      return this.defer(delivery, message, 0, UNSERVABLE_DEFER_MS);
    }
    const claim = await this.untilDatabaseAnswers(async () => (await this.claims.submit(message.taskId)) ?? NOT_FOUND);
    if (claim === undefined) return this.handBack(delivery, message);
    if (!claim.task) {
      return this.deadLetter(delivery, {
        code: 'TASK.NOT_FOUND',
        message: `no task ${message.taskId}`,
      });
    }
    if (!claim.applied) {
      if (this.isOrphanOfOurs(claim.task)) return this.adopt(delivery, message, claim.task);
      return this.settleUnowned(delivery, message, claim.task);
    }
    if (claim.task.attempt === 1) {
      this.metrics.queueWait.observe({ type: claim.task.type }, Math.max(0, Date.now() - claim.task.createdAt.getTime()) / 1000);
    }
    return this.runHeld(delivery, message, claim.task);
  }

  /**
   * Running under this worker's own lease, yet nothing here runs it: a claim committed whose answer
   * was lost (the connection dropped in between), so the retried claim found it taken, by us.
   */
  private isOrphanOfOurs(task: Task): boolean {
    return task.status === 'running' && task.leaseOwner === this.config.WORKER_ID && !this.held.has(task.id);
  }

  /**
   * Takes up an orphan of ours with the attempt it was claimed with (it costs no extra attempt),
   * fenced like a heartbeat: if another worker took it over meanwhile, the attempt no longer matches.
   */
  private async adopt(delivery: Delivery, message: TaskMessage, task: Task): Promise<void> {
    this.hold(task.id);
    try {
      const owned = await this.untilDatabaseAnswers(() =>
        this.tasks.heartbeat(task.id, task.attempt, this.config.WORKER_ID, this.config.WORKER_LEASE_MS),
      );
      if (owned === undefined) return this.handBack(delivery, message);
      if (!owned) return this.settleUnowned(delivery, message);
      this.logger.log({
        taskId: task.id,
        attempt: task.attempt,
        type: task.type,
        msg: 'adopted: its claim committed but the answer was lost',
      });
      return await this.run(delivery, message, task);
    } finally {
      this.release(task.id);
    }
  }

  private async runHeld(delivery: Delivery, message: TaskMessage, task: Task): Promise<void> {
    this.hold(task.id);
    try {
      return await this.run(delivery, message, task);
    } finally {
      this.release(task.id);
    }
  }

  private hold(id: string): void {
    this.held.set(id, (this.held.get(id) ?? 0) + 1);
  }

  private release(id: string): void {
    const count = (this.held.get(id) ?? 1) - 1;
    if (count > 0) this.held.set(id, count);
    else this.held.delete(id);
  }

  private async run(delivery: Delivery, message: TaskMessage, task: Task): Promise<void> {
    const token = task.attempt;
    // Every line about a task carries its id and attempt as fields (JSON logs).
    const traceparent = delivery.message.properties.headers?.['traceparent'] as string | undefined;
    const log = (level: 'debug' | 'log' | 'warn', msg: string, extra: Record<string, unknown> = {}) =>
      this.logger[level]({
        taskId: task.id,
        attempt: token,
        type: task.type,
        traceparent,
        ...extra,
        msg,
      });
    log('debug', 'claimed');
    const started = process.hrtime.bigint();
    const outcome = await this.execute(task);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics.duration.observe(
      {
        type: task.type,
        outcome: outcome.kind === 'aborted' ? outcome.reason : outcome.kind,
      },
      seconds,
    );
    const writer = this.config.WORKER_ID;

    if (outcome.kind === 'aborted') {
      if (outcome.reason === 'shutdown') {
        await this.untilDatabaseAnswers(() => this.tasks.release(task.id, token, writer), true);
        log('log', 'handed back on shutdown');
        return this.handBack(delivery, message);
      }
      log('log', `aborted (${outcome.reason})`, { reason: outcome.reason });
      return this.settleUnowned(delivery, message);
    }

    if (outcome.kind === 'succeeded') {
      const r = await this.untilDatabaseAnswers(
        async () =>
          (await this.completions.submit({
            id: task.id,
            token,
            result: outcome.result,
          })) ?? NOT_FOUND,
        true,
      );
      if (r === undefined) return this.handBack(delivery, message);
      if (!r.applied) return this.settleUnowned(delivery, message, r.task ?? undefined);
      log('debug', 'succeeded', { seconds });
      return delivery.ack();
    }

    const error = outcome.error;
    const attempt = token - task.attemptBase;
    if (error.retryable && attempt < task.maxAttempts) {
      const backoff = this.types.get(task.type)?.backoff ?? {
        baseMs: 1000,
        maxMs: 600_000,
      };
      // The tier's delay is what the retry really waits; the task is due then, and not before.
      const delayMs = this.publisher.retryTierFor(retryDelayMs(attempt, backoff)).delayMs;
      const r = await this.untilDatabaseAnswers(() => this.tasks.failRetryable(task.id, token, error, delayMs, writer), true);
      if (r === undefined) return this.handBack(delivery, message);
      if (!r.applied) return this.settleUnowned(delivery, message, r.task ?? undefined);
      try {
        const tier = await this.publisher.publishRetry(message, {
          attempt: token,
          delayMs,
        });
        this.metrics.retries.inc({ tier: tier.label });
        log('log', `${error.code} (${error.message}); retry in the ${tier.label} tier`, { error, tier: tier.label });
        return delivery.ack();
      } catch (err) {
        // The task waits in `retrying`; the redelivered copy (or the sweeper) claims it once due.
        log('warn', `retry not published (${(err as Error).message}); requeueing the delivery`);
        return delivery.requeue();
      }
    }

    const r = await this.untilDatabaseAnswers(() => this.tasks.failFinal(task.id, token, error, writer), true);
    if (r === undefined) return this.handBack(delivery, message);
    if (!r.applied) return this.settleUnowned(delivery, message, r.task ?? undefined);
    log('warn', `failed for good: ${error.code} (${error.message})`, { error });
    return this.deadLetter(delivery, error, true);
  }

  /** Runs the handler under a timeout, heartbeats and the cancel signal. */
  private async execute(task: Task): Promise<Outcome> {
    const token = task.attempt;
    const handler = this.handlers.get(task.type);
    if (!handler) {
      // Checked before the claim; only a task whose row names another type than its message gets here.
      return {
        kind: 'failed',
        error: {
          code: 'TASK.NO_HANDLER',
          message: `this worker has no handler for ${task.type}`,
          retryable: false,
        },
      };
    }
    const checked = this.types.check(task.type, task.payload);
    if (!checked.ok) {
      return {
        kind: 'failed',
        error: {
          code: 'TASK.INVALID_PAYLOAD',
          message: checked.message,
          retryable: false,
        },
      };
    }

    const controller = new AbortController();
    let abortedFor: AbortReason | null = null;
    const abort = (reason: AbortReason) => {
      if (abortedFor) return;
      abortedFor = reason;
      controller.abort(new TaskAbortedError(reason));
    };
    this.runs.set(task.id, { token, abort });
    if (this.shuttingDown) abort('shutdown');

    const lease = this.config.WORKER_LEASE_MS;
    const timeout = setTimeout(() => abort('timeout'), task.timeoutMs);

    const ctx: TaskContext = {
      taskId: task.id,
      type: task.type,
      payload: checked.payload,
      attempt: token - task.attemptBase,
      signal: controller.signal,
      progress: async (percent, progressMessage) => {
        const owned = await this.tasks.progress(task.id, token, this.config.WORKER_ID, percent, progressMessage ?? null, lease);
        if (!owned) abort('lease-lost');
        return owned;
      },
    };

    // A handler that ignores its signal is not waited for: its late writes are fenced out.
    const aborted = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
    );
    try {
      const result = await Promise.race([handler.run(ctx), aborted]);
      if (abortedFor) return { kind: 'aborted', reason: abortedFor };
      return { kind: 'succeeded', result: toStorableJson(result) };
    } catch (err) {
      if (abortedFor && abortedFor !== 'timeout') return { kind: 'aborted', reason: abortedFor };
      return {
        kind: 'failed',
        error: toTaskError(abortedFor === 'timeout' ? new TaskAbortedError('timeout') : err),
      };
    } finally {
      clearTimeout(timeout);
      // A newer run of the same task in this process (a takeover of our own expired lease) keeps its entry.
      if (this.runs.get(task.id)?.token === token) this.runs.delete(task.id);
      aborted.catch(() => undefined);
      if (!controller.signal.aborted) controller.abort(RUN_ENDED);
    }
  }

  /**
   * This worker does not own the task (a duplicate, a task running elsewhere, a lost lease):
   * ack when the task is terminal; otherwise defer a copy through a retry tier, then ack.
   */
  private async settleUnowned(delivery: Delivery, message: TaskMessage, known?: Task): Promise<void> {
    const task = known ?? (await this.untilDatabaseAnswers(() => this.find(message.taskId), true));
    if (task === undefined) return this.handBack(delivery, message);
    if (task === null) {
      return this.deadLetter(delivery, {
        code: 'TASK.NOT_FOUND',
        message: `no task ${message.taskId}`,
      });
    }
    if (isTerminal(task.status)) {
      this.metrics.duplicates.inc();
      return delivery.ack();
    }
    if (task.status === 'new') {
      // Not started: its start will queue a message of its own.
      return delivery.ack();
    }
    const leaseLeft = task.leaseExpiresAt ? task.leaseExpiresAt.getTime() - Date.now() : 0;
    if (task.status === 'running' && leaseLeft <= 0 && task.attempt - task.attemptBase >= task.maxAttempts) {
      // Its workers died on every attempt (a crash loop): fail it rather than run it again.
      const error = {
        code: 'TASK.ABANDONED',
        message: `lease expired on all ${task.maxAttempts} attempts`,
        retryable: false,
      };
      const r = await this.untilDatabaseAnswers(() => this.tasks.failAbandoned(task.id, error, this.config.WORKER_ID), true);
      if (r === undefined) return this.handBack(delivery, message);
      if (r.applied) {
        return this.deadLetter(delivery, error, true);
      }
      // The database disagrees (its clock says the lease is live, or the row moved on): look again later, not in a loop.
      if (r.task && isTerminal(r.task.status)) return this.settleUnowned(delivery, message, r.task);
      return this.defer(delivery, message, task.attempt, 0);
    }
    if (task.status === 'retrying' && task.runAfter && task.runAfter.getTime() > Date.now()) {
      // A duplicate or early copy of a retry: it comes back when the backoff is over, not before.
      return this.defer(delivery, message, task.attempt, task.runAfter.getTime() - Date.now());
    }
    return this.defer(delivery, message, task.attempt, Math.max(leaseLeft, 0));
  }

  /** Publishes a copy that comes back after `delayMs` (rounded down to a tier), then acks. */
  private async defer(delivery: Delivery, message: TaskMessage, attempt: number, delayMs: number): Promise<void> {
    try {
      await this.publisher.publishRetry(message, { attempt, delayMs });
      this.metrics.deferrals.inc();
      delivery.ack();
    } catch (err) {
      this.logger.warn({
        taskId: message.taskId,
        attempt,
        msg: `deferral not published (${(err as Error).message}); requeueing`,
      });
      await sleep(500);
      delivery.requeue();
    }
  }

  /**
   * Gives a delivery back for another run. A requeue is the natural way, but a quorum queue counts
   * each one toward `x-delivery-limit` and dead-letters the message past it: a worker restarted
   * twenty times would turn a live task's only message into a dead letter. There a fresh copy is
   * published (confirmed, counting from zero), then the delivery acked (rule b: a successor is
   * confirmed); if that publish fails, the requeue it is.
   */
  private async handBack(delivery: Delivery, message: TaskMessage): Promise<void> {
    if (this.topology.queueType !== 'quorum') return delivery.requeue();
    try {
      const headers = delivery.message.properties.headers ?? {};
      const traceparent = headers[HEADERS.traceparent];
      await this.publisher.publishTask(message, {
        attempt: Number(headers[HEADERS.attempt] ?? 0) || 0,
        traceparent: typeof traceparent === 'string' ? traceparent : undefined,
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
   * Only a bug (or a statement the database refuses) gets here. The delivery is requeued so nothing
   * is lost, after a pause so it cannot spin; the same task failing this way again and again has
   * its message dead-lettered with the error, where an operator sees it (and redrives it once fixed).
   */
  private async onUnexpectedError(delivery: Delivery, err: unknown): Promise<void> {
    this.logger.error(`unexpected error handling a delivery: ${(err as Error)?.stack ?? err}`);
    const parsed = parseTaskMessage(delivery.message.content);
    const key = parsed.ok ? parsed.message.taskId : String(delivery.message.properties.messageId);
    const count = (this.unexpected.get(key) ?? 0) + 1;
    this.unexpected.delete(key);
    if (count >= MAX_UNEXPECTED_ERRORS) {
      const message = `${count} deliveries failed with an unexpected error: ${(err as Error)?.message ?? String(err)}`;
      return this.deadLetter(delivery, {
        code: 'WORKER.INTERNAL_ERROR',
        message: message.slice(0, 1000),
        retryable: false,
      });
    }
    this.unexpected.set(key, count);
    if (this.unexpected.size > 10_000) this.unexpected.delete(this.unexpected.keys().next().value as string);
    await sleep(1000);
    delivery.requeue();
  }

  /** Confirmed publish to the dead-letter exchange with the reason, then ack; if the broker refuses, reject (broker-side DLX). */
  private async deadLetter(delivery: Delivery, reason: TaskError, taskIsTerminal = false): Promise<void> {
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
      // A terminal task needs no more deliveries (rule a); anything else goes through the queue's own DLX.
      if (taskIsTerminal) delivery.ack();
      else delivery.reject();
    }
  }

  private async find(id: string): Promise<Task | null> {
    const rows = await this.db.query(`SELECT * FROM tasks WHERE id = $1`, [id]);
    return rows.length > 0 ? this.tasks.hydrate(rows[0]) : null;
  }

  /**
   * Retries a database call while the database is unreachable, holding the delivery (prefetch
   * keeps this bounded). Gives up (undefined) only on shutdown, unless `evenOnShutdown`: a
   * finished run's outcome is worth waiting for until the process is killed.
   */
  private async untilDatabaseAnswers<T>(call: () => Promise<T>, evenOnShutdown = false): Promise<T | undefined> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await call();
      } catch (err) {
        // A statement the database refuses (bad data, a bug) will not get better: no retry loop.
        if (!isTransientDatabaseError(err)) throw err;
        if (this.shuttingDown && (!evenOnShutdown || Date.now() > this.giveUpAt)) return undefined;
        this.logger.warn(`database call failed (${(err as Error).message}); retrying in ${delay} ms`);
        await sleep(delay);
      }
    }
  }
}
