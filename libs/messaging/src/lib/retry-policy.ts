/** Backoff of one task type: the first retry waits about `baseMs`, doubling up to `maxMs`. */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** @internal +/- this fraction of the exponential delay, so retries of a burst of failures spread out. */
export const RETRY_JITTER = 0.2;

/**
 * Delay before retry number `attempt` (1 = first retry): `base * 2^(attempt-1)`, capped at
 * `maxMs`, then +/-20% jitter (never above `maxMs`, never below 0). `random` is injectable for tests.
 */
export function retryDelayMs(
  attempt: number,
  { baseMs, maxMs }: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity for huge attempts; Math.min handles that.
  const exponential = Math.min(maxMs, baseMs * 2 ** exponent);
  const jittered = exponential * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random());
  return Math.round(Math.max(0, Math.min(maxMs, jittered)));
}

/**
 * @internal The tier a delay is served by: the largest tier whose delay is <= `delayMs` (never later than
 * asked), or the smallest tier if `delayMs` is below all of them. `tiers` must be non-empty.
 */
export function pickRetryTier<T extends { delayMs: number }>(delayMs: number, tiers: readonly T[]): T {
  if (tiers.length === 0) throw new Error('pickRetryTier: no retry tiers configured');
  const sorted = [...tiers].sort((a, b) => a.delayMs - b.delayMs);
  let chosen = sorted[0];
  for (const tier of sorted) if (tier.delayMs <= delayMs) chosen = tier;
  return chosen;
}
