import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

const names = new Map<string, string>();

/** A stable name per statement text (pg refuses one name for two texts on a connection). */
function statementName(sql: string): string {
  let name = names.get(sql);
  if (!name) names.set(sql, (name = `tasks_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`));
  return name;
}

/** @internal The pg pool under TypeORM's Postgres driver. */
export function pgPool(db: DataSource): Pool {
  return (db.driver as unknown as { master: Pool }).master;
}

/**
 * @internal Runs `sql` as a named prepared statement: each pooled connection parses and plans it once,
 * not on every call (planning the transition statements cost as much as running them). For
 * the hot statements only; the set of texts must stay small, since every connection keeps each.
 * Its generic plan may be made while the tables are empty and kept as they grow: a new statement
 * goes through prepared-plans.int-spec.ts, which refuses a plan that scans a growing table whole.
 */
export async function preparedQuery<R = Record<string, any>>(
  db: DataSource,
  sql: string,
  params: unknown[],
): Promise<R[]> {
  const pool = pgPool(db);
  // Each stale connection fails once and is dropped: at most one retry per pooled connection.
  const retries = pool.options.max ?? 10;
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await pool.query({ name: statementName(sql), text: sql, values: params });
      return result.rows as R[];
    } catch (err) {
      // A migration that changed a table (a new column under `RETURNING *`) leaves statements
      // prepared before it unusable on their connection ("cached plan must not change result
      // type"); the pool drops that connection, so the statement is prepared anew on the next.
      if ((err as { code?: string }).code !== '0A000' || attempt >= retries) throw err;
    }
  }
}
