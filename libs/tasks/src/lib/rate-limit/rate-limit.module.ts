import { Module } from '@nestjs/common';
import { DistributedRateLimiter } from './distributed-rate-limiter';
import { RateLimitCountersStore } from './rate-limit-counters.store';

/** Rate limits shared by every replica through PostgreSQL; needs the DataSource of TasksModule. */
@Module({
  providers: [RateLimitCountersStore, DistributedRateLimiter],
  exports: [DistributedRateLimiter],
})
export class RateLimitModule {}
