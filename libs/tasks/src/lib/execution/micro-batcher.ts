import { AppError, ERROR_CODES } from '@tasksys/platform';

/** @internal More calls are waiting than the batcher accepts: the caller should shed load (the api answers 503). */
export class BatcherOverloadedError extends AppError {
  readonly code = ERROR_CODES.OVERLOADED;

  constructor(waiting: number) {
    super(`${waiting} calls already waiting for a statement; retry shortly`);
  }
}

/**
 * @internal Groups concurrent calls into one batched call without adding latency at low load: a call
 * goes out at once when fewer than `maxInFlight` batches are running; otherwise it waits and
 * joins the next batch (up to `maxItems`). Under load, one statement serves many tasks.
 * A key appears at most once per batch (a second call with the same key waits for the next).
 */
export class MicroBatcher<I, O> {
  private queue: { item: I; resolve: (o: O | undefined) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(
    private readonly opts: {
      maxItems: number;
      maxInFlight: number;
      key: (item: I) => string;
      run: (items: I[]) => Promise<Map<string, O>>;
      /** Whether a failed batch is retried item by item (default: always). Otherwise every caller gets the error. */
      split?: (err: unknown) => boolean;
      /** Calls allowed to wait for a batch; beyond it `submit` rejects with BatcherOverloadedError (default: no limit). */
      maxWaiting?: number;
    },
  ) {}

  submit(item: I): Promise<O | undefined> {
    if (this.queue.length >= (this.opts.maxWaiting ?? Number.POSITIVE_INFINITY)) {
      return Promise.reject(new BatcherOverloadedError(this.queue.length));
    }
    return new Promise<O | undefined>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** A failed batch is retried item by item, so one bad item fails only its own caller. */
  private async oneByOne(
    batch: { item: I; resolve: (o: O | undefined) => void; reject: (e: unknown) => void }[],
  ): Promise<void> {
    for (const entry of batch) {
      try {
        const results = await this.opts.run([entry.item]);
        entry.resolve(results.get(this.opts.key(entry.item)));
      } catch (err) {
        entry.reject(err);
      }
    }
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch: typeof this.queue = [];
      const keys = new Set<string>();
      const rest: typeof this.queue = [];
      for (const entry of this.queue) {
        const key = this.opts.key(entry.item);
        if (batch.length < this.opts.maxItems && !keys.has(key)) {
          keys.add(key);
          batch.push(entry);
        } else rest.push(entry);
      }
      this.queue = rest;
      this.inFlight++;
      this.opts
        .run(batch.map((e) => e.item))
        .then(
          (results) => batch.forEach((e) => e.resolve(results.get(this.opts.key(e.item)))),
          (err) =>
            batch.length > 1 && (this.opts.split?.(err) ?? true)
              ? this.oneByOne(batch)
              : batch.forEach((e) => e.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
