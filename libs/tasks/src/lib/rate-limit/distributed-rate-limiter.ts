import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { type HitTicket, KeyBudget, type Waiter } from './key-budget';
import { type CounterChange, RateLimitCountersStore, type TokenRequest } from './rate-limit-counters.store';

export interface RateLimitDecision {
  readonly allowed: boolean;
  /** Requests counted in the window, this one included when allowed (as this replica knows it). */
  readonly count: number;
  /** When refused: how long until one more request fits, in ms. */
  readonly retryAfterMs: number;
  /** @internal */
  readonly ticket: HitTicket | null;
}

/** @internal Timings of the limiter; tests shorten them. */
export interface RateLimiterOptions {
  /** How often a replica settles with PostgreSQL (and asks for tokens for its active keys). */
  syncIntervalMs: number;
  /** The longest a request waits for a sync (its key's first sync, or more tokens while there is room). */
  maxWaitMs: number;
  /** With no successful sync for this long, each replica limits on its own. */
  staleAfterMs: number;
  /** Keys used within this get tokens topped up on every sync, so their requests never wait. */
  activeMs: number;
  /** Tokens are given back one sync after the one that granted them, or after this long. */
  leaseKeepMs: number;
  cleanupIntervalMs: number;
  /** Keys tracked per replica; beyond it the least recently used are forgotten. */
  maxKeys: number;
}

/** @internal Injection token of the (partial) RateLimiterOptions; the defaults below otherwise. */
export const RATE_LIMITER_OPTIONS = Symbol('RATE_LIMITER_OPTIONS');

const DEFAULTS: RateLimiterOptions = {
  syncIntervalMs: 200,
  maxWaitMs: 500,
  staleAfterMs: 2000,
  activeMs: 10_000,
  leaseKeepMs: 1000,
  cleanupIntervalMs: 10_000,
  maxKeys: 100_000,
};
/** Expired buckets are deleted a window late at the earliest (replicas' clocks may differ a little). */
const CLEANUP_GRACE_MS = 60_000;
const CLEANUP_BATCH = 1000;
/** How long shutdown waits to give tokens back. */
const SHUTDOWN_SYNC_MS = 2000;

/**
 * Rate limits that hold across api replicas, with PostgreSQL (table `rate_limit_counters`) as the
 * only shared store and no database round trip of its own per request.
 *
 * Counting. A key's window is cut into 20 buckets (3 s for a minute). A bucket counts until its
 * latest hit is one window old, so every hit counts for at least the whole window after it and
 * at most one bucket longer: no interval of one window ever holds more than the limit (no 2x at a
 * window boundary, unlike fixed windows), a client sending steadily above the limit still gets at
 * least 20/21 (95%) of it, and Retry-After is never more than the window.
 *
 * Sharing. A replica admits a request by spending a token. Tokens come from PostgreSQL: every
 * 200 ms one transaction per replica locks the keys it has news about (in a fixed order), gives
 * back the tokens it did not spend, and takes new ones, up to the room left under the limit
 * (counted there: every replica's hits and unspent tokens). A replica asks for twice what its key
 * used since the last sync (a tenth of the limit at first), so tokens follow traffic, and gives a
 * batch back once a newer one arrives or after 1 s. A request that finds no token
 * waits, at most 500 ms (twice that when a sync already in flight answered without it), for the next sync, which then starts at once and serves all waiting
 * requests together: that is the first request of a key on a replica, and a key that ran out of
 * tokens while there was room. A key at its limit is refused at once, without waiting, with
 * Retry-After from the expiry of its buckets; its replica still asks each sync while requests
 * come, so room another replica gives back is found within one.
 *
 * Error bound, while PostgreSQL answers: a key is admitted at most its limit in any interval of
 * one window across the whole deployment, however many replicas and however the load is spread
 * (every token is counted in PostgreSQL before it is spent). The error is all on the low side:
 * tokens another replica holds unspent, given back within about a second, so a burst may see
 * 429 early while they are out; a burst that keeps coming gets the whole limit (the two-process
 * test: 60 of 120 for a limit of 60). A replica that stops gives its tokens back; one that dies
 * leaves them counted until they expire (at most one window).
 *
 * When PostgreSQL does not answer. Requests never fail because of the limiter: after 2 s without
 * a successful sync (a waiting request: after 500 ms) each replica limits on its own count, so a
 * deployment of N replicas admits up to N times the limit; hits admitted that way are settled
 * when PostgreSQL answers again. Transitions are logged once each. Clocks: buckets use each
 * replica's clock; a replica whose clock runs ahead by d lets a bucket go d early.
 */
@Injectable()
export class DistributedRateLimiter implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(DistributedRateLimiter.name);
  private readonly options: RateLimiterOptions;
  /** In least recently used order. */
  private readonly budgets = new Map<string, KeyBudget>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private syncing = false;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private retryNotBefore = 0;
  private lastSuccess = Date.now();
  private successes = 0;
  private shared = true;
  private lastError = 'no answer';
  private nextCleanup = 0;
  private cleaning = false;
  private warnedFull = false;

  constructor(
    private readonly store: RateLimitCountersStore,
    @Optional() @Inject(RATE_LIMITER_OPTIONS) options?: Partial<RateLimiterOptions>,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  /**
   * Gives back unspent tokens and settles what was admitted, so the other replicas can use the
   * room at once (a replica that dies instead leaves its tokens counted until they expire).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await this.running?.catch(() => undefined);
        await this.syncOnce(Date.now(), { final: true }).catch(() => undefined);
      })(),
      new Promise<void>((ok) => (timeout = setTimeout(ok, SHUTDOWN_SYNC_MS))),
    ]);
    clearTimeout(timeout);
    const now = Date.now();
    for (const budget of this.budgets.values()) this.resolveAll(budget, (w) => this.local(budget, now, w));
  }

  /** Counts one request for `key` against `limit` per `windowMs`: admitted (and counted) or refused (not counted). */
  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    const now = Date.now();
    const budget = this.budget(key, limit, windowMs, now);
    budget.demand++;
    if (!this.isShared(now)) return this.decideLocally(budget, now);
    const ticket = budget.spend(now);
    if (ticket) return { allowed: true, count: Math.max(1, budget.used - budget.tokens()), retryAfterMs: 0, ticket };
    if (budget.known && budget.fullUntil !== null && now < budget.fullUntil)
      return refused(budget.used, budget.fullUntil - now);
    return this.wait(budget);
  }

  /** Takes back an admitted request that should not count (an address's budget, when its key turned out valid). */
  refund(decision: RateLimitDecision): void {
    if (decision.ticket) this.budgets.get(decision.ticket.key)?.refund(decision.ticket);
  }

  /** Limits hold across replicas (false: PostgreSQL has not answered lately, each replica counts alone). */
  isShared(now = Date.now()): boolean {
    const shared = now - this.lastSuccess <= this.options.staleAfterMs;
    if (shared !== this.shared) {
      this.shared = shared;
      if (shared) this.logger.log('PostgreSQL answers again: rate limits hold across replicas');
      else
        this.logger.warn(
          `no rate-limit sync with PostgreSQL for ${this.options.staleAfterMs} ms (${this.lastError}): each replica limits on its own until it answers`,
        );
    }
    return shared;
  }

  private budget(key: string, limit: number, windowMs: number, now: number): KeyBudget {
    let budget = this.budgets.get(key);
    if (budget) {
      this.budgets.delete(key);
      budget.limit = limit;
    } else {
      budget = new KeyBudget(key, limit, windowMs, now);
      if (this.budgets.size >= this.options.maxKeys) this.evictOldest(now);
    }
    budget.lastUsed = now;
    this.budgets.set(key, budget);
    return budget;
  }

  /** Too many keys (many client addresses): the least recently used goes; PostgreSQL keeps its tokens counted until they expire. */
  private evictOldest(now: number): void {
    if (!this.warnedFull) {
      this.warnedFull = true;
      this.logger.warn(`rate limiter tracks ${this.options.maxKeys} keys: forgetting the least recently used`);
    }
    const [key, oldest] = this.budgets.entries().next().value as [string, KeyBudget];
    this.budgets.delete(key);
    this.resolveAll(oldest, (w) => this.local(oldest, now, w));
  }

  private decideLocally(budget: KeyBudget, now: number): RateLimitDecision {
    const ticket = budget.admitLocally(now);
    const count = budget.ownCount(now);
    return ticket ? { allowed: true, count, retryAfterMs: 0, ticket } : refused(count, budget.ownRetryAfter(now));
  }

  private wait(budget: KeyBudget): Promise<RateLimitDecision> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        since: this.successes,
        timer: setTimeout(() => this.expire(budget, waiter), this.options.maxWaitMs),
        resolve: (ticket) => {
          clearTimeout(waiter.timer);
          resolve(
            ticket
              ? { allowed: true, count: Math.max(1, budget.used - budget.tokens()), retryAfterMs: 0, ticket }
              : refused(budget.used, budget.fullUntil === null ? 1000 : budget.fullUntil - Date.now()),
          );
        },
      };
      budget.waiters.push(waiter);
      this.soon();
    });
  }

  /**
   * A request waited its longest. With no sync answered since it came, PostgreSQL is slow or away and
   * the replica decides alone. If syncs did answer, only for earlier demand (it came while one was in
   * flight, as under CPU load), the sync now running asks for it: it waits once more for that one,
   * and after that decides alone. A key known to be full is refused. Before, such a request was
   * refused although its key had all its room (batch submits of a fresh key on a loaded api).
   */
  private expire(budget: KeyBudget, waiter: Waiter): void {
    const i = budget.waiters.indexOf(waiter);
    if (i < 0) return;
    const now = Date.now();
    if (budget.known && budget.fullUntil !== null && now < budget.fullUntil) {
      budget.waiters.splice(i, 1);
      return waiter.resolve(null);
    }
    if (this.successes !== waiter.since && !waiter.extended) {
      waiter.extended = true;
      waiter.timer = setTimeout(() => this.expire(budget, waiter), this.options.maxWaitMs);
      return this.soon();
    }
    budget.waiters.splice(i, 1);
    this.local(budget, now, waiter);
  }

  private local(budget: KeyBudget, now: number, waiter: Waiter): void {
    waiter.resolve(budget.admitLocally(now));
  }

  private resolveAll(budget: KeyBudget, settle: (w: Waiter) => void): void {
    for (const w of budget.waiters.splice(0)) settle(w);
  }

  /** After a sync: waiting requests take the new tokens; with none left, a full key refuses them, otherwise they ask again. */
  private serve(budget: KeyBudget, now: number): void {
    while (budget.waiters.length > 0) {
      const ticket = budget.spend(now);
      if (!ticket) break;
      budget.waiters.shift()?.resolve(ticket);
    }
    if (budget.waiters.length === 0) return;
    if (budget.fullUntil !== null && now < budget.fullUntil) this.resolveAll(budget, (w) => w.resolve(null));
    else this.again = true;
  }

  private soon(): void {
    if (this.syncing) this.again = true;
    else this.schedule(Math.max(0, this.retryNotBefore - Date.now()));
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.syncing || this.closed) return;
    this.syncing = true;
    const started = Date.now();
    let ok = false;
    try {
      this.running = this.syncOnce(started);
      await this.running;
      ok = true;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.retryNotBefore = Date.now() + this.options.syncIntervalMs;
      this.logger.debug(`rate-limit sync failed: ${this.lastError}`);
    } finally {
      this.syncing = false;
      this.running = null;
      const again = this.again && ok;
      this.again = false;
      this.schedule(again ? 0 : Math.max(0, this.options.syncIntervalMs - (Date.now() - started)));
    }
    this.isShared();
    if (ok && Date.now() >= this.nextCleanup) void this.cleanup();
  }

  /** One sync: settle every key with news, ask tokens for the active ones, then serve who waits. */
  private async syncOnce(now: number, opts: { final?: boolean } = {}): Promise<void> {
    const sent: { budget: KeyBudget; changes: CounterChange[]; request: TokenRequest | null }[] = [];
    for (const [key, budget] of this.budgets) {
      budget.retireLeases(now, opts.final ? 0 : this.options.leaseKeepMs);
      budget.prune(now);
      if (budget.forgettable(now, this.options.activeMs)) {
        this.budgets.delete(key);
        continue;
      }
      const changes = budget.changes();
      const request = opts.final ? null : budget.request(now, this.options.activeMs);
      budget.demand = 0;
      if (changes.length > 0 || request) sent.push({ budget, changes, request });
    }
    const grants =
      sent.length === 0
        ? []
        : await this.store.sync(
            sent.flatMap((s) => s.changes),
            sent.flatMap((s) => (s.request ? [s.request] : [])),
            now,
          );
    this.lastSuccess = Date.now();
    this.successes++;
    const byKey = new Map(grants.map((g) => [g.key, g]));
    for (const { budget, changes, request } of sent) {
      budget.applied(changes);
      const grant = request && byKey.get(budget.key);
      if (request && grant) budget.granted(grant, request);
      this.serve(budget, this.lastSuccess);
    }
  }

  /** Deletes a batch of expired buckets (every replica does, now and then; more often while there is a backlog). */
  private async cleanup(): Promise<void> {
    if (this.cleaning) return;
    this.cleaning = true;
    const now = Date.now();
    try {
      const deleted = await this.store.deleteExpired(now - CLEANUP_GRACE_MS, CLEANUP_BATCH);
      this.nextCleanup = deleted === CLEANUP_BATCH ? now : now + this.options.cleanupIntervalMs;
    } catch (err) {
      this.nextCleanup = now + this.options.cleanupIntervalMs;
      this.logger.debug(`rate-limit clean-up failed: ${(err as Error).message}`);
    } finally {
      this.cleaning = false;
    }
  }
}

function refused(count: number, retryAfterMs: number): RateLimitDecision {
  return { allowed: false, count, retryAfterMs: Math.max(0, retryAfterMs), ticket: null };
}
