import { Inject, Injectable } from '@nestjs/common';
import type { OutboxBatchResult, OutboxRecord, OutboxStore } from '@tasksys/messaging';
import { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../database.config';
import { pgConnectionConfig } from '../data-source.options';
import { PgNotificationListener } from '../pg-notification.listener';
import { DATABASE_CONFIG } from '../tasks.constants';

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
}

/** The outbox table behind the messaging library's OutboxStore port. */
@Injectable()
export class PgOutboxStore implements OutboxStore {
  constructor(
    private readonly db: DataSource,
    @Inject(DATABASE_CONFIG) private readonly config: DatabaseConfig,
  ) {}

  async relayBatch(
    limit: number,
    publish: (records: OutboxRecord[]) => Promise<{ confirmed: string[]; error?: string }>,
  ): Promise<OutboxBatchResult> {
    return this.db.transaction(async (tx) => {
      const rows: OutboxRow[] = await tx.query(
        `SELECT * FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) return { locked: 0, sent: 0 };
      const { confirmed, error } = await publish(rows.map(toRecord));
      if (confirmed.length > 0) {
        await tx.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [confirmed]);
      }
      if (confirmed.length < rows.length) {
        const done = new Set(confirmed);
        const failed = rows.filter((r) => !done.has(r.id)).map((r) => r.id);
        await tx.query(
          `UPDATE outbox SET publish_attempts = publish_attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])`,
          [failed, error ?? 'not confirmed'],
        );
      }
      return { locked: rows.length, sent: confirmed.length };
    });
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
  };
}
