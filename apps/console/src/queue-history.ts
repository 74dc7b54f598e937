import { api, type QueueList } from './api';

/** Client-side history of queue depths: sampled every SAMPLE_MS while the console is open, kept for WINDOW_MS. */
export const SAMPLE_MS = 3000;
export const WINDOW_MS = 10 * 60_000;

export interface Sample {
  at: number;
  messages: Record<string, number>;
}

const samples: Sample[] = [];
let latest: QueueList | null = null;
let lastError: string | null = null;
const listeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;

async function sample(): Promise<void> {
  try {
    latest = await api.queues();
    lastError = null;
    const at = Date.now();
    samples.push({ at, messages: Object.fromEntries(latest.items.map((q) => [q.name, q.messages])) });
    while (samples.length && samples[0].at < at - WINDOW_MS) samples.shift();
  } catch (err) {
    lastError = (err as Error).message;
  }
  for (const l of listeners) l();
}

export function startSampling(): void {
  if (timer) return;
  void sample();
  timer = setInterval(() => void sample(), SAMPLE_MS);
}

export function stopSampling(): void {
  if (timer) clearInterval(timer);
  timer = null;
  samples.length = 0;
  latest = null;
}

export function queueHistory(): { latest: QueueList | null; samples: readonly Sample[]; error: string | null } {
  return { latest, samples, error: lastError };
}

export function subscribe(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
