/**
 * The port through which the outbox relay reads the outbox table. The task store
 * implements it (libs/tasks), so this library never depends on the task entities.
 */
export interface OutboxRecord {
  id: string;
  /** Logical exchange role: `work` or `control` (mapped to namespaced names by the topology). */
  exchange: string;
  /** Work messages: the task type (the topology turns it into the routing key for `priority`). */
  routingKey: string;
  /** The task's priority, 0-9 (9 first), published as the message priority. */
  priority?: number;
  messageId: string;
  correlationId: string | null;
  body: unknown;
  headers: Record<string, unknown>;
  createdAt: Date;
  publishAttempts: number;
}

export interface OutboxBatchResult {
  /** Rows locked by this relay in this round. */
  locked: number;
  /** Rows confirmed by the broker and removed from the outbox. */
  sent: number;
}

export interface OutboxStore {
  /**
   * Locks up to `limit` unsent rows (FOR UPDATE SKIP LOCKED, oldest first) in one transaction,
   * hands them to `publish`, deletes the ones whose ids it returns (confirmed by the broker),
   * records an attempt and `error` on the others, and commits. A crash before commit leaves
   * every row for the next round.
   */
  relayBatch(
    limit: number,
    publish: (records: OutboxRecord[]) => Promise<{ confirmed: string[]; error?: string }>,
  ): Promise<OutboxBatchResult>;
  /** Calls `onWake` whenever rows are committed (LISTEN/NOTIFY). Resolves to a function that stops listening. */
  listen(onWake: () => void): Promise<() => Promise<void>>;
  /** Unsent rows and the age of the oldest, for metrics and readiness. */
  backlog(): Promise<{ count: number; oldestAgeMs: number }>;
}

export const OUTBOX_STORE = Symbol('OUTBOX_STORE');
