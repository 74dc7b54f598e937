import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { isTransientDatabaseError } from '../database-errors';

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;

/**
 * @internal Retries a database call while the database is unreachable, holding the delivery
 * (prefetch keeps this bounded). A statement the database refuses, or a bug, is not retried: it
 * propagates. On shutdown the waiting ends: at once for calls that only start work, after a last
 * few seconds for the outcome of a finished run (worth waiting for until the process is killed).
 */
@Injectable()
export class DatabaseRetry {
  private readonly logger = new Logger(DatabaseRetry.name);
  private stopping = false;
  private giveUpAt = Number.POSITIVE_INFINITY;

  /** Shutdown: calls give up now, outcomes in `outcomesWithinMs`. */
  stop(outcomesWithinMs: number): void {
    this.stopping = true;
    this.giveUpAt = Date.now() + outcomesWithinMs;
  }

  /** The call's answer, or undefined when it gave up on shutdown. */
  async untilAnswered<T>(call: () => Promise<T>, { outcome = false } = {}): Promise<T | undefined> {
    for (let delay = FIRST_DELAY_MS; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
      try {
        return await call();
      } catch (err) {
        if (!isTransientDatabaseError(err)) throw err;
        if (this.stopping && (!outcome || Date.now() > this.giveUpAt)) return undefined;
        this.logger.warn(`database call failed (${(err as Error).message}); retrying in ${delay} ms`);
        await sleep(delay);
      }
    }
  }
}
