import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { BrokerStatus } from '../broker-status';
import type { MessagingConfig } from '../messaging.config';
import { InjectMessagingConfig } from '../messaging.constants';
import { TaskPublisher } from '../publishing/task.publisher';
import { OUTBOX_STORE, type OutboxRecord, type OutboxStore } from './outbox.store';

export interface OutboxRelayStats {
  /** Rows confirmed by the broker and removed by this relay. */
  sent: number;
  /** Publishes that failed (the rows stay for a later round). */
  failed: number;
  /** Rounds that failed as a whole (database down). */
  roundErrors: number;
  lastError: string | null;
  running: boolean;
}

export interface OutboxRelayOptions {
  /** Wake on LISTEN/NOTIFY (default true); false: poll every OUTBOX_POLL_MS only. */
  listen: boolean;
  /** Rounds at once (default: OUTBOX_RELAY_CONCURRENCY when listening, else 1). */
  concurrency?: number;
}
/** @internal Inject token of the OutboxRelayOptions (OutboxRelayModule's options). */
export const OUTBOX_RELAY_OPTIONS = Symbol('OUTBOX_RELAY_OPTIONS');

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5000;

/**
 * Moves outbox rows to the broker: locks a batch (FOR UPDATE SKIP LOCKED, so several relays can
 * run), publishes all of it concurrently with confirms, deletes what was confirmed, in one
 * transaction (`OutboxStore.relayBatch`). Woken by LISTEN/NOTIFY, polls as a fallback, loops at
 * once after a full batch, backs off (to 5 s) while the broker or the database is failing.
 *
 * Rounds are pipelined: OUTBOX_RELAY_CONCURRENCY of them run at once, each its own transaction, and
 * a notification wakes one that is idle. A round spends most of its time waiting for the broker's
 * confirms (persistent messages: tens of ms here); with one round at a time, a row committed
 * meanwhile waited for that round and the next, the largest part of a single submit's time to
 * start. SKIP LOCKED keeps the rounds' rows apart. Messages are not ordered across rounds (within
 * one they never were: a batch is published concurrently).
 * The api imports `OutboxRelayModule.register({ listen: true })`; workers `OutboxRelayModule.register({ listen: false })`.
 */
@Injectable()
export class OutboxRelayService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OutboxRelayService.name);
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** Rounds asleep waiting for work, each with the function that wakes it. */
  private readonly sleepers = new Set<() => void>();
  /** Rounds backing off after a failure: only stopping wakes them. */
  private readonly backingOff = new Set<() => void>();
  /** A wake-up no round was asleep for: the next round to sleep runs at once instead. */
  private woken = false;
  private stopListening: (() => Promise<void>) | null = null;
  private readonly counters = { sent: 0, failed: 0, roundErrors: 0 };
  private lastError: string | null = null;

  constructor(
    @Inject(OUTBOX_STORE) private readonly store: OutboxStore,
    private readonly publisher: TaskPublisher,
    private readonly broker: BrokerStatus,
    @InjectMessagingConfig()
    private readonly config: Pick<MessagingConfig, 'OUTBOX_BATCH_SIZE' | 'OUTBOX_POLL_MS'> &
      Partial<Pick<MessagingConfig, 'OUTBOX_RELAY_CONCURRENCY'>>,
    @Optional() @Inject(OUTBOX_RELAY_OPTIONS) private readonly options: OutboxRelayOptions | null = null,
  ) {}

  onApplicationBootstrap(): Promise<void> {
    return this.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.stop();
  }

  /** Starts listening and the relay loop (idempotent). */
  async start(): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    const listening = this.options?.listen !== false;
    if (listening) await this.listen();
    const rounds = this.options?.concurrency ?? (listening ? (this.config.OUTBOX_RELAY_CONCURRENCY ?? 1) : 1);
    this.loop = Promise.all(Array.from({ length: Math.max(1, rounds) }, () => this.run())).then(() => undefined);
  }

  private async listen(): Promise<void> {
    try {
      this.stopListening = await this.store.listen(() => this.wake());
    } catch (err) {
      // Polling still runs; the listener of PgOutboxStore reconnects by itself.
      this.logger.warn(`LISTEN failed (${(err as Error).message}); relying on polling`);
    }
  }

  /** Stops after the in-flight batches (their rows are committed or left for the next relay). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const sleeper of [...this.sleepers, ...this.backingOff]) sleeper();
    await this.loop;
    this.loop = null;
    await this.stopListening?.().catch(() => undefined);
    this.stopListening = null;
  }

  /** Runs a round now instead of at the next notification or poll: one asleep, or the next to finish. */
  wake(): void {
    const sleeper = this.sleepers.values().next().value;
    if (sleeper) sleeper();
    else this.woken = true;
  }

  /** Wakes the relay and resolves when the outbox is empty; rejects after `timeoutMs`. */
  async drain(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.wake();
      const { count } = await this.store.backlog();
      if (count === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `Outbox not drained within ${timeoutMs} ms: ${count} rows left (${this.lastError ?? 'no error'})`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stats(): OutboxRelayStats {
    return { ...this.counters, lastError: this.lastError, running: this.loop !== null && !this.stopping };
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_START_MS;
    while (!this.stopping) {
      let outcome: 'full' | 'idle' | 'failing';
      try {
        outcome = await this.round();
      } catch (err) {
        // relayBatch failed as a whole (database down, transaction aborted): nothing was deleted.
        this.counters.roundErrors++;
        this.lastError = (err as Error).message;
        outcome = 'failing';
      }
      if (this.stopping) break;
      if (outcome === 'full') {
        backoff = BACKOFF_START_MS;
        continue;
      }
      if (outcome === 'failing') {
        await this.sleep(backoff, false);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      } else {
        backoff = BACKOFF_START_MS;
        await this.sleep(this.config.OUTBOX_POLL_MS, true);
      }
    }
  }

  private async round(): Promise<'full' | 'idle' | 'failing'> {
    // Locking rows only to time out on a dead broker would hold them for the publish timeout.
    if (!this.broker.isReady()) {
      this.lastError = this.broker.lastError()?.message ?? 'broker not ready';
      return 'failing';
    }
    let failures = 0;
    const result = await this.store.relayBatch(this.config.OUTBOX_BATCH_SIZE, async (records) => {
      const outcomes = await Promise.allSettled(records.map((r) => this.publisher.publishOutbox(r)));
      const confirmed: string[] = [];
      let error: string | undefined;
      outcomes.forEach((o, i) => {
        const record: OutboxRecord = records[i];
        if (o.status === 'fulfilled') confirmed.push(record.id);
        else error ??= (o.reason as Error).message;
      });
      failures = records.length - confirmed.length;
      return { confirmed, error };
    });
    this.counters.sent += result.sent;
    this.counters.failed += failures;
    if (failures > 0) {
      this.lastError = `${failures} of ${result.locked} publishes failed`;
      this.logger.warn(`Outbox: ${this.lastError}; retrying with backoff`);
      return 'failing';
    }
    return result.locked >= this.config.OUTBOX_BATCH_SIZE ? 'full' : 'idle';
  }

  /** Sleeps `ms`, or less when woken (if `wakeable`: a round waiting for work) or stopping. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    const sleepers = wakeable ? this.sleepers : this.backingOff;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  }
}
