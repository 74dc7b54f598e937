import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../../testing';
import { dataSourceOptions } from '../data-source.options';
import { DistributedRateLimiter, type RateLimiterOptions } from './distributed-rate-limiter';
import { RateLimitCountersStore } from './rate-limit-counters.store';

describe('DistributedRateLimiter (real PostgreSQL, two limiters as two replicas)', () => {
  let t: TestDatabase;
  const started: DistributedRateLimiter[] = [];

  const replica = (db: DataSource, options: Partial<RateLimiterOptions> = {}) => {
    const limiter = new DistributedRateLimiter(new RateLimitCountersStore(db), options);
    limiter.onApplicationBootstrap();
    started.push(limiter);
    return limiter;
  };
  const admitted = (decisions: { allowed: boolean }[]) => decisions.filter((d) => d.allowed).length;

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((l) => l.beforeApplicationShutdown()));
  });
  afterAll(() => t.drop());

  it('admits a burst spread over two replicas exactly up to the limit, then refuses at once with a Retry-After inside the window', async () => {
    const [a, b] = [replica(t.db), replica(t.db)];
    const decisions = await Promise.all(
      Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).hit('burst', 100, 60_000)),
    );
    expect(admitted(decisions)).toBe(100);
    const t0 = Date.now();
    const late = await Promise.all([a.hit('burst', 100, 60_000), b.hit('burst', 100, 60_000)]);
    expect(Date.now() - t0).toBeLessThan(50); // decided locally: no waiting for PostgreSQL
    for (const d of late) {
      expect(d.allowed).toBe(false);
      expect(d.retryAfterMs).toBeGreaterThan(55_000);
      expect(d.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    const [row] = await t.db.query(`SELECT sum(hits)::int AS hits FROM rate_limit_counters WHERE key = 'burst'`);
    expect(row.hits).toBe(100);
  });

  it('keeps the limit when requests trickle in to both replicas across many syncs', async () => {
    const [a, b] = [replica(t.db, { syncIntervalMs: 50 }), replica(t.db, { syncIntervalMs: 50 })];
    const decisions = [];
    for (let i = 0; i < 120; i++) {
      decisions.push(await (i % 2 ? a : b).hit('trickle', 40, 60_000));
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 60));
    }
    expect(admitted(decisions)).toBe(40);
  });

  it('gives a refunded hit back to the key', async () => {
    const a = replica(t.db);
    const first = await a.hit('refund', 2, 60_000);
    a.refund(first);
    const next = await Promise.all([
      a.hit('refund', 2, 60_000),
      a.hit('refund', 2, 60_000),
      a.hit('refund', 2, 60_000),
    ]);
    expect(next.map((d) => d.allowed)).toEqual([true, true, false]);
  });

  it('admits, never refuses, a new key with room whose requests outwait a slow sync that answered only for others', async () => {
    // Every sync answers, but after 150 ms (as on a CPU-starved api). A request of a new key arrives
    // while a sync for another key is in flight: that sync answers without it, the next one comes
    // too late for its wait. Before, it was refused although the key had all its room.
    const slow = new RateLimitCountersStore(t.db);
    const sync = slow.sync.bind(slow);
    slow.sync = async (...args: Parameters<typeof sync>) => {
      await new Promise((r) => setTimeout(r, 150));
      return sync(...args);
    };
    const a = new DistributedRateLimiter(slow, { maxWaitMs: 200, syncIntervalMs: 20 });
    a.onApplicationBootstrap();
    started.push(a);
    await new Promise((r) => setTimeout(r, 10));
    const other = a.hit('slow-other', 1_000_000, 60_000);
    await new Promise((r) => setTimeout(r, 30));
    const fresh = await Promise.all(Array.from({ length: 4 }, () => a.hit('slow-fresh', 1_000_000, 60_000)));
    expect((await other).allowed).toBe(true);
    expect(fresh.map((d) => d.allowed)).toEqual([true, true, true, true]);
    // A key known to be full is still refused.
    await Promise.all(Array.from({ length: 3 }, () => a.hit('slow-full', 3, 60_000)));
    const after = await a.hit('slow-full', 3, 60_000);
    expect(after.allowed).toBe(false);
  });

  it('limits on its own count, without failing or hanging a request, while PostgreSQL does not answer', async () => {
    const gone = new DataSource(dataSourceOptions(t.config));
    await gone.initialize();
    await gone.destroy(); // every sync now fails
    const a = replica(gone, { staleAfterMs: 300, maxWaitMs: 100 });
    const t0 = Date.now();
    const first = await a.hit('away', 3, 60_000);
    expect(first.allowed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 400));
    expect(a.isShared()).toBe(false);
    const rest = await Promise.all(Array.from({ length: 5 }, () => a.hit('away', 3, 60_000)));
    expect(rest.map((d) => d.allowed)).toEqual([true, true, false, false, false]);
    expect(rest[4].retryAfterMs).toBeGreaterThan(55_000);
  });
});
