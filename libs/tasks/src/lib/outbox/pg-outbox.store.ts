import { Injectable } from '@nestjs/common';
import type { QueryResult } from 'pg';
import { DataSource } from 'typeorm';
import type { OutboxBatchResult, OutboxRecord, OutboxStore } from '@tasksys/messaging';
import { pgConnectionConfig } from '../data-source.options';
import type { DatabaseConfig } from '../database.config';
import { PgNotificationListener } from '../pg-notification.listener';
import { pgPool } from '../prepared-query';
import { InjectDatabaseConfig } from '../tasks.constants';

interface OutboxRow {
  id: string;
  exchange: string;
  routing_key: string;
  message_id: string;
  correlation_id: string | null;
  body: unknown;
  headers: Record<string, unknown>;
  created_at: Date;
  publish_attempts: number;
  priority: number;
}

/** @internal The outbox table behind the messaging library's OutboxStore port. */
@Injectable()
export class PgOutboxStore implements OutboxStore {
  constructor(
    private readonly db: DataSource,
    @InjectDatabaseConfig() private readonly config: DatabaseConfig,
  ) {}

  async relayBatch(
    limit: number,
    publish: (records: OutboxRecord[]) => Promise<{ confirmed: string[]; error?: string }>,
  ): Promise<OutboxBatchResult> {
    // A pooled connection of its own, two round trips per round: `BEGIN; SELECT ... FOR UPDATE`
    // and `DELETE ...; COMMIT`, each sent as one simple-protocol query (ids and limit are
    // integers, inlined). Under single submits the relay runs a round per commit.
    const client = await pgPool(this.db).connect();
    let failure: Error | undefined;
    // A checked-out client has no error listener of the pool's: a connection dropped while the
    // batch is being published (PostgreSQL restarting) would otherwise crash the process.
    const onError = (err: Error) => (failure ??= err);
    client.on('error', onError);
    try {
      const [, read] = (await client.query(
        `BEGIN; SELECT * FROM outbox ORDER BY id LIMIT ${integer(limit)} FOR UPDATE SKIP LOCKED`,
      )) as unknown as QueryResult<OutboxRow>[];
      const rows = read.rows;
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { locked: 0, sent: 0 };
      }
      const { confirmed, error } = await publish(rows.map(toRecord));
      const done = new Set(confirmed);
      const failed = rows.filter((r) => !done.has(r.id)).map((r) => r.id);
      if (failed.length > 0) {
        await client.query(
          `UPDATE outbox SET publish_attempts = publish_attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])`,
          [failed, error ?? 'not confirmed'],
        );
      }
      const sent = rows.filter((r) => done.has(r.id)).map((r) => integer(r.id));
      await client.query(sent.length > 0 ? `DELETE FROM outbox WHERE id IN (${sent.join(',')}); COMMIT` : 'COMMIT');
      return { locked: rows.length, sent: sent.length };
    } catch (err) {
      failure = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', onError);
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.release(failure);
    }
  }

  async listen(onWake: () => void): Promise<() => Promise<void>> {
    const listener = new PgNotificationListener(
      pgConnectionConfig(this.config),
      `${this.config.DATABASE_SCHEMA}.outbox`,
      onWake,
      onWake,
    );
    await listener.start();
    return () => listener.close();
  }

  async backlog(): Promise<{ count: number; oldestAgeMs: number }> {
    const [row] = await this.db.query(
      `SELECT count(*)::int AS count,
              coalesce(extract(epoch FROM now() - min(created_at)) * 1000, 0)::float8 AS age
         FROM outbox`,
    );
    return { count: row.count, oldestAgeMs: row.age };
  }
}

/** An integer as SQL text; anything else is a bug, not input (ids come from our own SELECT). */
function integer(value: string | number): string {
  const text = String(value);
  if (!/^\d{1,19}$/.test(text)) throw new Error(`not an outbox id or limit: ${text}`);
  return text;
}

function toRecord(row: OutboxRow): OutboxRecord {
  return {
    id: row.id,
    exchange: row.exchange,
    routingKey: row.routing_key,
    messageId: row.message_id,
    correlationId: row.correlation_id,
    body: row.body,
    headers: row.headers,
    createdAt: row.created_at,
    publishAttempts: row.publish_attempts,
    priority: row.priority,
  };
}
