import type { CounterChange, TokenGrant, TokenRequest } from './rate-limit-counters.store';

/** @internal Buckets per window: a hit counts until the latest hit of its bucket is one window old (see DistributedRateLimiter). */
export const BUCKETS_PER_WINDOW = 20;

/** @internal Names one admitted hit, so it can be refunded. */
export interface HitTicket {
  key: string;
  bucket: number;
}

/** @internal A request waiting for the next sync. */
export interface Waiter {
  /** Successful syncs before it started waiting. */
  since: number;
  timer: NodeJS.Timeout;
  /** It outwaited a sync that answered without it and waits for one more. */
  extended?: boolean;
  resolve: (admitted: HitTicket | null) => void;
}

/** Tokens PostgreSQL recorded for this replica in one bucket, spent without asking again. */
interface Lease {
  bucket: number;
  left: number;
  grantedAt: number;
}

/** One bucket of a key as this replica sees it. */
interface Entry {
  /** What PostgreSQL holds from this replica here: tokens granted and hits settled. */
  recorded: number;
  /** Hits this replica admitted here (from tokens, or on its own count when PostgreSQL was away). */
  admitted: number;
  /** Epoch ms of the latest admitted hit, 0 if none. */
  lastHit: number;
  /** The latest expiry PostgreSQL has for the bucket from this replica. */
  sentExpiry: number;
}

/**
 * @internal One key's budget as one replica sees it: its unused tokens (leases), what it admitted
 * and recorded per bucket, the deployment-wide count as of the last sync, and the requests
 * waiting for the next one. No I/O: DistributedRateLimiter drives it.
 */
export class KeyBudget {
  readonly bucketMs: number;
  readonly waiters: Waiter[] = [];
  /** Calls (admitted, refused or waiting) since the last sync was sent: the next request asks for twice that. */
  demand = 0;
  lastUsed: number;
  /** The key's count across the deployment after the last grant, this replica's unused tokens included. */
  used = 0;
  /** A sync found no room: when enough hits expire for one more (epoch ms). */
  fullUntil: number | null = null;
  /** A sync has answered for this key. */
  known = false;
  private readonly leases: Lease[] = [];
  private readonly entries = new Map<number, Entry>();

  constructor(
    readonly key: string,
    public limit: number,
    readonly windowMs: number,
    now: number,
  ) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / BUCKETS_PER_WINDOW));
    this.lastUsed = now;
  }

  /** Unused tokens. */
  tokens(): number {
    return this.leases.reduce((sum, l) => sum + l.left, 0);
  }

  /** Admits on a token (the oldest lease first); null when there is none. */
  spend(now: number): HitTicket | null {
    const lease = this.leases.find((l) => l.left > 0);
    if (!lease) return null;
    lease.left--;
    return this.record(lease.bucket, now);
  }

  /** Admits on this replica's own count alone (PostgreSQL away); null when that count is at the limit. */
  admitLocally(now: number): HitTicket | null {
    if (this.ownCount(now) >= this.limit) return null;
    return this.record(now - (now % this.bucketMs), now);
  }

  /** Hits this replica admitted that still count at `now`. */
  ownCount(now: number): number {
    let count = 0;
    for (const e of this.entries.values()) if (e.lastHit + this.windowMs > now) count += e.admitted;
    return count;
  }

  /** With the own count at the limit: ms until enough of it expires for one more hit. */
  ownRetryAfter(now: number): number {
    const live = [...this.entries.values()]
      .filter((e) => e.lastHit + this.windowMs > now)
      .sort((a, b) => a.lastHit - b.lastHit);
    let count = live.reduce((sum, e) => sum + e.admitted, 0);
    for (const e of live) {
      count -= e.admitted;
      if (count < this.limit) return e.lastHit + this.windowMs - now;
    }
    return 0;
  }

  /** Takes back an admitted hit (a request that turned out not to count). */
  refund(ticket: HitTicket): void {
    const e = this.entries.get(ticket.bucket);
    if (!e || e.admitted <= 0) return;
    e.admitted--;
    // Back into its lease when that still exists; otherwise the next sync gives it back.
    const lease = this.leases.find((l) => l.bucket === ticket.bucket);
    if (lease) lease.left++;
  }

  /** Before a sync is built: drops every lease but the newest, if that is younger than `keepMs`; the sync gives their tokens back. */
  retireLeases(now: number, keepMs: number): void {
    const newest = this.leases[this.leases.length - 1];
    this.leases.length = 0;
    if (newest && newest.left > 0 && now - newest.grantedAt < keepMs) this.leases.push(newest);
  }

  /** Per bucket: what this replica holds there (admitted plus unused tokens) less what PostgreSQL has from it, and later expiries. */
  changes(): CounterChange[] {
    const out: CounterChange[] = [];
    for (const [bucket, e] of this.entries) {
      const delta = e.admitted + this.heldIn(bucket) - e.recorded;
      const expiresAt = Math.max(e.sentExpiry, e.lastHit > 0 ? e.lastHit + this.windowMs : 0);
      if (delta !== 0 || expiresAt > e.sentExpiry) out.push({ key: this.key, bucket, delta, expiresAt });
    }
    return out;
  }

  /** Tokens to ask for: twice the recent demand (or a tenth of the limit the first time), less those still held. */
  request(now: number, activeMs: number): TokenRequest | null {
    if (now - this.lastUsed >= activeMs && this.waiters.length === 0) return null;
    const target = Math.max(this.known ? 1 : Math.ceil(this.limit / 10), 2 * this.demand, this.waiters.length);
    const want = Math.min(this.limit, target - this.tokens());
    if (want <= 0) return null;
    return {
      key: this.key,
      want,
      limit: this.limit,
      bucket: now - (now % this.bucketMs),
      expiresAt: now + this.windowMs,
    };
  }

  /** PostgreSQL applied `changes`. */
  applied(changes: CounterChange[]): void {
    for (const c of changes) {
      const e = this.entry(c.bucket);
      e.recorded += c.delta;
      e.sentExpiry = Math.max(e.sentExpiry, c.expiresAt);
    }
  }

  /** PostgreSQL answered `request`. */
  granted(grant: TokenGrant, request: TokenRequest): void {
    this.known = true;
    this.used = grant.used;
    if (grant.granted > 0) {
      this.leases.push({ bucket: request.bucket, left: grant.granted, grantedAt: request.expiresAt - this.windowMs });
      const e = this.entry(request.bucket);
      e.recorded += grant.granted;
      e.sentExpiry = Math.max(e.sentExpiry, request.expiresAt);
    }
    this.fullUntil = grant.used >= this.limit ? (grant.retryAt ?? request.expiresAt) : null;
  }

  /** Forgets buckets that no longer count and hold nothing unsettled. */
  prune(now: number): void {
    for (const [bucket, e] of this.entries) {
      if (this.heldIn(bucket) > 0 || e.admitted !== e.recorded) continue;
      if (e.recorded === 0 || e.lastHit + this.windowMs <= now) this.entries.delete(bucket);
    }
  }

  /** Nothing to settle, nobody waiting, not used for `idleMs`: the budget can go. */
  forgettable(now: number, idleMs: number): boolean {
    return (
      this.waiters.length === 0 && this.leases.length === 0 && this.entries.size === 0 && now - this.lastUsed >= idleMs
    );
  }

  private heldIn(bucket: number): number {
    let held = 0;
    for (const l of this.leases) if (l.bucket === bucket) held += l.left;
    return held;
  }

  private entry(bucket: number): Entry {
    let e = this.entries.get(bucket);
    if (!e) this.entries.set(bucket, (e = { recorded: 0, admitted: 0, lastHit: 0, sentExpiry: 0 }));
    return e;
  }

  private record(bucket: number, now: number): HitTicket {
    const e = this.entry(bucket);
    e.admitted++;
    e.lastHit = Math.max(e.lastHit, now);
    return { key: this.key, bucket };
  }
}
