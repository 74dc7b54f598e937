import { pickRetryTier, retryDelayMs } from './retry-policy';

const backoff = { baseMs: 1000, maxMs: 60_000 };
const middle = () => 0.5; // no jitter: factor exactly 1

describe('retryDelayMs', () => {
  it('doubles per attempt from the base', () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, backoff, middle))).toEqual([1000, 2000, 4000, 8000]);
  });

  it('is capped at maxMs, also for absurd attempt numbers', () => {
    expect(retryDelayMs(7, backoff, middle)).toBe(60_000);
    expect(retryDelayMs(10_000, backoff, middle)).toBe(60_000);
  });

  it('treats attempts below 1 as the first retry', () => {
    expect(retryDelayMs(0, backoff, middle)).toBe(1000);
  });

  it('keeps jitter within +/-20% and never above the cap', () => {
    expect(retryDelayMs(3, backoff, () => 0)).toBe(3200);
    expect(retryDelayMs(3, backoff, () => 0.999999)).toBe(4800);
    expect(retryDelayMs(20, backoff, () => 0.999999)).toBe(60_000);
    expect(retryDelayMs(20, backoff, () => 0)).toBe(48_000);
  });

  it('spreads delays with the real random source', () => {
    const seen = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, backoff)));
    expect(seen.size).toBeGreaterThan(10);
    for (const d of seen) {
      expect(d).toBeGreaterThanOrEqual(3200);
      expect(d).toBeLessThanOrEqual(4800);
    }
  });
});

describe('pickRetryTier', () => {
  const tiers = [1000, 10_000, 60_000, 600_000].map((delayMs) => ({ delayMs }));

  it('picks a tier exactly at its boundary', () => {
    expect(pickRetryTier(10_000, tiers).delayMs).toBe(10_000);
    expect(pickRetryTier(600_000, tiers).delayMs).toBe(600_000);
  });

  it('picks the largest tier not later than asked between boundaries', () => {
    expect(pickRetryTier(9_999, tiers).delayMs).toBe(1000);
    expect(pickRetryTier(59_999, tiers).delayMs).toBe(10_000);
    expect(pickRetryTier(3_600_000, tiers).delayMs).toBe(600_000);
  });

  it('picks the smallest tier below all of them', () => {
    expect(pickRetryTier(0, tiers).delayMs).toBe(1000);
    expect(pickRetryTier(999, tiers).delayMs).toBe(1000);
  });

  it('does not depend on the order of the list', () => {
    expect(pickRetryTier(15_000, [...tiers].reverse()).delayMs).toBe(10_000);
  });

  it('refuses an empty tier list', () => {
    expect(() => pickRetryTier(1000, [])).toThrow(/no retry tiers/);
  });
});
