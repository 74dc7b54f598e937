export {
  DistributedRateLimiter,
  RATE_LIMITER_OPTIONS,
  type RateLimitDecision,
  type RateLimiterOptions,
} from './distributed-rate-limiter';
export { RateLimitModule } from './rate-limit.module';
