import type { z } from 'zod';

/** Exponential backoff between retries: base * 2^(attempt-1), capped, with jitter. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * What the api and the worker both know about a task type: its payload schema (checked at
 * submit time and again by the worker), its defaults, and when it is available. The handler
 * that runs it lives with the worker.
 */
export interface TaskTypeDefinition<P = unknown> {
  type: string;
  description: string;
  payload: z.ZodType<P>;
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** Why the type is unavailable under this configuration, or null when it is available. */
  unavailableReason?: (config: TaskTypesConfig) => string | null;
}

export interface TaskTypesConfig {
  SQL_TARGET_URL?: string;
  DEMO_ALLOW_CRASH: boolean;
}
