import type { ThrottlerStorage } from '@nestjs/throttler';
import type { DistributedRateLimiter } from '@tasksys/tasks';

/** The package does not export the record type from its entry point. */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * @nestjs/throttler's storage over the limiter every replica shares (through PostgreSQL), in
 * place of its per-process memory. A refused request is not counted and `blockDuration` has no
 * effect: a key is refused until enough of its window expires for one more request (Retry-After).
 */
export class SharedThrottlerStorage implements ThrottlerStorage {
  constructor(private readonly limiter: DistributedRateLimiter) {}

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const decision = await this.limiter.hit(key, limit, ttl);
    return {
      totalHits: decision.allowed ? Math.min(decision.count, limit) : limit + 1,
      timeToExpire: Math.ceil(ttl / 1000),
      isBlocked: !decision.allowed,
      timeToBlockExpire: decision.allowed ? 0 : retryAfterSeconds(decision.retryAfterMs),
    };
  }
}

/** Retry-After in whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
