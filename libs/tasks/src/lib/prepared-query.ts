import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';

const names = new Map<string, string>();

/** A stable name per statement text (pg refuses one name for two texts on a connection). */
function statementName(sql: string): string {
  let name = names.get(sql);
  if (!name) names.set(sql, (name = `tasks_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`));
  return name;
}

/** The pg pool under TypeORM's Postgres driver. */
export function pgPool(db: DataSource): Pool {
  return (db.driver as unknown as { master: Pool }).master;
}

/**
 * Runs `sql` as a named prepared statement: each pooled connection parses and plans it once,
 * not on every call (planning the transition statements cost as much as running them). For
 * the hot statements only; the set of texts must stay small, since every connection keeps each.
 */
export async function preparedQuery<R = Record<string, any>>(on: DataSource | PoolClient, sql: string, params: unknown[]): Promise<R[]> {
  const client = 'driver' in on ? pgPool(on) : on;
  const result = await client.query({ name: statementName(sql), text: sql, values: params });
  return result.rows as R[];
}
