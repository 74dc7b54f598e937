/**
 * WORKER_CONCURRENCY counted in tasks, not deliveries: a bundle's delivery carries many tasks, and
 * each of them takes a slot while it is handled. `take(n)` waits, first come first served, until at
 * least one slot is free and takes up to `n` of them; `give(n)` hands them back. After
 * `refuseWaiting()` (shutdown) it takes none.
 */
export class TaskSlots {
  private used = 0;
  private refusing = false;
  private readonly waiting: { want: number; grant: (n: number) => void }[] = [];

  constructor(readonly size: number) {}

  /** Slots taken now. */
  inUse(): number {
    return this.used;
  }

  /** Resolves with how many slots it took (1 to `want`) once any is free, after those who asked first. */
  take(want: number): Promise<number> {
    if (this.refusing) return Promise.resolve(0);
    return new Promise((grant) => {
      this.waiting.push({ want: Math.max(1, want), grant });
      this.serve();
    });
  }

  /** Shutdown: whoever waits, and whoever asks from now on, gets 0 slots (and hands its delivery back). */
  refuseWaiting(): void {
    this.refusing = true;
    for (const w of this.waiting.splice(0)) w.grant(0);
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
    this.serve();
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.used < this.size) {
      const next = this.waiting.shift()!;
      const n = Math.min(next.want, this.size - this.used);
      this.used += n;
      next.grant(n);
    }
  }
}
