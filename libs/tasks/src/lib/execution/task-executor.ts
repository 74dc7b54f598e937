import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { type Delivery, parseTaskMessage, retryDelayMs, TaskPublisher, type TaskMessage } from '@tasksys/messaging';
import { ERROR_CODES } from '@tasksys/platform';
import type { Task } from '../entities';
import { TaskStateMachine, type TransitionResult } from '../task-state-machine';
import { TaskTypeRegistry } from '../task-types';
import { AckRule } from './ack-rule';
import { DatabaseRetry } from './database-retry';
import { InjectWorkerConfig } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';
import { HandlerRunner } from './handler-runner';
import { LeaseKeeper } from './lease-keeper';
import { MicroBatcher } from './micro-batcher';
import { annotateRun, inDeliverySpan } from './run-tracing';
import { TaskHandlerRegistry } from './task-handler.registry';
import type { WorkerConfig } from './worker.config';

const NOT_FOUND: TransitionResult = { applied: false, task: null };
/** After the grace period, how long settling may still wait for the database before handing back anyway. */
const SETTLE_AFTER_GRACE_MS = 10_000;
/** A task this worker cannot run (no handler, missing setting) comes back about this much later. */
const UNSERVABLE_DEFER_MS = 10_000;
/**
 * Claims and completions of concurrent deliveries share statements (see MicroBatcher). Two in
 * flight: a claim that arrives while one statement runs goes out at once instead of waiting for it
 * (a single submit's time to start); rows are locked in id order, so two claims never deadlock.
 */
const BATCH_MAX_ITEMS = 200;
const BATCH_MAX_IN_FLIGHT = 2;
const DEFAULT_BACKOFF = { baseMs: 1000, maxMs: 600_000 };

/**
 * Every work delivery goes through here: parse -> claim -> run -> record the outcome -> settle by
 * the ack rule (ack-rule.ts). Leases and aborts are the LeaseKeeper's, the handler's run is the
 * HandlerRunner's, database retries are DatabaseRetry's. Every write is fenced by the run's attempt
 * number, so a run that lost its lease writes nothing.
 */
@Injectable()
export class TaskExecutor {
  private readonly logger = new Logger(TaskExecutor.name);
  private readonly pending = new Set<Promise<void>>();
  private consuming = false;
  private readonly claims: MicroBatcher<string, TransitionResult>;
  private readonly completions: MicroBatcher<{ id: string; token: number; result: unknown }, TransitionResult>;

  constructor(
    private readonly tasks: TaskStateMachine,
    private readonly publisher: TaskPublisher,
    private readonly types: TaskTypeRegistry,
    private readonly handlers: TaskHandlerRegistry,
    private readonly leases: LeaseKeeper,
    private readonly runner: HandlerRunner,
    private readonly ackRule: AckRule,
    private readonly retry: DatabaseRetry,
    @InjectWorkerConfig() private readonly config: WorkerConfig,
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
    if (consuming) this.leases.start();
  }

  isConsuming(): boolean {
    return this.consuming;
  }

  /** Deliveries being handled right now (claiming, running or settling). */
  inFlight(): number {
    return this.pending.size;
  }

  /** Entry point for every single-task delivery (WorkIntake splits bundles); `message`: its body, already read. Never throws. */
  handle(delivery: Delivery, message?: TaskMessage): Promise<void> {
    const done = inDeliverySpan(delivery, () => this.process(delivery, message)).catch((err) =>
      this.ackRule.unexpectedError(delivery, err),
    );
    const tracked = done.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }

  /** A cancel signal from the control exchange (see LeaseKeeper.cancel). */
  cancelLocal(taskId: string, attempt?: number): void {
    this.leases.cancel(taskId, attempt);
  }

  /**
   * Graceful shutdown, after the consumer stopped: let in-flight runs finish within `graceMs`,
   * then abort the rest; aborted runs release their lease and hand their delivery back.
   */
  async drain(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      await Promise.race([
        Promise.allSettled([...this.pending]),
        sleep(Math.min(250, Math.max(1, deadline - Date.now()))),
      ]);
    }
    this.retry.stop(SETTLE_AFTER_GRACE_MS);
    const aborted = this.leases.abortAll('shutdown');
    if (this.pending.size > 0) {
      this.logger.warn(`grace period over: handing ${aborted} running task(s) back`);
      await Promise.allSettled([...this.pending]);
    }
    this.leases.stop();
  }

  private async process(delivery: Delivery, known?: TaskMessage): Promise<void> {
    const parsed = known ? ({ ok: true, message: known } as const) : parseTaskMessage(delivery.message.content);
    if (!parsed.ok)
      return this.ackRule.deadLetter(delivery, { code: parsed.code, message: parsed.reason, retryable: false });
    const message = parsed.message;
    const unavailable = this.handlers.whyNotRunnable(message.type);
    if (unavailable) {
      // Not claimed, so no attempt is spent: another worker (or this one, once configured) runs it.
      this.logger.warn({ taskId: message.taskId, type: message.type, msg: `deferred: ${unavailable}` });
      return this.ackRule.defer(delivery, message, 0, UNSERVABLE_DEFER_MS);
    }
    // A claim that failed may still have committed (its answer lost on the way): remember that.
    let unanswered = false;
    const claim = await this.retry.untilAnswered(async () => {
      try {
        return (await this.claims.submit(message.taskId)) ?? NOT_FOUND;
      } catch (err) {
        unanswered = true;
        throw err;
      }
    });
    if (claim === undefined) return this.ackRule.handBack(delivery, message);
    if (!claim.task) {
      return this.ackRule.deadLetter(delivery, {
        code: ERROR_CODES.TASK_NOT_FOUND,
        message: `no task ${message.taskId}`,
        retryable: false,
      });
    }
    const task = claim.task;
    if (claim.applied) {
      if (task.attempt === 1)
        this.metrics.queueWait.observe({ type: task.type }, Math.max(0, Date.now() - task.createdAt.getTime()) / 1000);
      return this.leases.holding(task.id, () => this.run(delivery, message, task));
    }
    if (unanswered && this.isOrphanOfOurs(task))
      return this.leases.holding(task.id, () => this.adopt(delivery, message, task));
    return this.ackRule.unowned(delivery, message, task);
  }

  /**
   * Running under this worker's own lease, yet nothing here runs it, after a claim of this process
   * got no answer: that claim committed and its answer was lost (the connection dropped, the client
   * timed out), so the retried claim found it taken, by us. Only then: a worker restarted under the
   * same WORKER_ID finds its previous incarnation's runs under its name too, and adopting those would
   * let a task that kills its worker run forever without spending an attempt.
   */
  private isOrphanOfOurs(task: Task): boolean {
    return task.status === 'running' && task.leaseOwner === this.config.WORKER_ID && !this.leases.holds(task.id);
  }

  /**
   * Takes up an orphan of ours with the attempt it was claimed with (it costs no extra attempt),
   * fenced like a heartbeat: if another worker took it over meanwhile, the attempt no longer matches.
   */
  private async adopt(delivery: Delivery, message: TaskMessage, task: Task): Promise<void> {
    const { WORKER_ID, WORKER_LEASE_MS } = this.config;
    const owned = await this.retry.untilAnswered(() =>
      this.tasks.heartbeat(task.id, task.attempt, WORKER_ID, WORKER_LEASE_MS),
    );
    if (owned === undefined) return this.ackRule.handBack(delivery, message);
    if (!owned) return this.ackRule.unowned(delivery, message);
    this.logger.log({
      taskId: task.id,
      attempt: task.attempt,
      type: task.type,
      msg: 'adopted: its claim committed but the answer was lost',
    });
    return this.run(delivery, message, task);
  }

  /** Runs a claimed task, records its outcome (fenced by its attempt) and settles the delivery. */
  private async run(delivery: Delivery, message: TaskMessage, task: Task): Promise<void> {
    const token = task.attempt;
    const writer = this.config.WORKER_ID;
    // Every line about a task carries its id and attempt as fields (JSON logs).
    const traceparent = delivery.message.properties.headers?.['traceparent'] as string | undefined;
    const log = (level: 'debug' | 'log' | 'warn', msg: string, extra: Record<string, unknown> = {}) =>
      this.logger[level]({ taskId: task.id, attempt: token, type: task.type, traceparent, ...extra, msg });
    log('debug', 'claimed');
    const started = process.hrtime.bigint();
    const outcome = await this.runner.run(task);
    annotateRun(task, outcome);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics.duration.observe(
      { type: task.type, outcome: outcome.kind === 'aborted' ? outcome.reason : outcome.kind },
      seconds,
    );
    const untilAnswered = <T>(call: () => Promise<T>) => this.retry.untilAnswered(call, { outcome: true });

    if (outcome.kind === 'aborted') {
      if (outcome.reason === 'shutdown') {
        await untilAnswered(() => this.tasks.release(task.id, token, writer));
        log('log', 'handed back on shutdown');
        return this.ackRule.handBack(delivery, message);
      }
      log('log', `aborted (${outcome.reason})`, { reason: outcome.reason });
      return this.ackRule.unowned(delivery, message);
    }

    if (outcome.kind === 'succeeded') {
      const r = await untilAnswered(
        async () => (await this.completions.submit({ id: task.id, token, result: outcome.result })) ?? NOT_FOUND,
      );
      if (r === undefined) return this.ackRule.handBack(delivery, message);
      if (!r.applied) return this.ackRule.unowned(delivery, message, r.task ?? undefined);
      log('debug', 'succeeded', { seconds });
      return this.ackRule.terminal(delivery);
    }

    const error = outcome.error;
    const attempt = token - task.attemptBase;
    if (error.retryable && attempt < task.maxAttempts) {
      // The tier's delay is what the retry really waits; the task is due then, and not before.
      const backoff = this.types.get(task.type)?.backoff ?? DEFAULT_BACKOFF;
      const delayMs = this.publisher.retryTierFor(retryDelayMs(attempt, backoff)).delayMs;
      const r = await untilAnswered(() => this.tasks.failRetryable(task.id, token, error, delayMs, writer));
      if (r === undefined) return this.ackRule.handBack(delivery, message);
      if (!r.applied) return this.ackRule.unowned(delivery, message, r.task ?? undefined);
      const tier = await this.ackRule.retried(delivery, message, token, delayMs);
      if (tier) log('log', `${error.code} (${error.message}); retry in the ${tier} tier`, { error, tier });
      return;
    }

    const r = await untilAnswered(() => this.tasks.failFinal(task.id, token, error, writer));
    if (r === undefined) return this.ackRule.handBack(delivery, message);
    if (!r.applied) return this.ackRule.unowned(delivery, message, r.task ?? undefined);
    log('warn', `failed for good: ${error.code} (${error.message})`, { error });
    return this.ackRule.deadLetter(delivery, error, true);
  }
}
