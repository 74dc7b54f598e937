import type { DataSource } from 'typeorm';

/**
 * Creates the schema and runs pending migrations under an advisory lock, so several
 * replicas can start at once and only one migrates. Returns the names it ran.
 */
export async function runMigrations(db: DataSource, schema: string): Promise<string[]> {
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.query(`SELECT pg_advisory_lock(hashtext($1))`, [`${schema}.migrations`]);
    try {
      await runner.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      // One transaction each: a migration may opt out (`transaction = false`) to build an index CONCURRENTLY.
      const ran = await db.runMigrations({ transaction: 'each' });
      return ran.map((m) => m.name);
    } finally {
      await runner.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`${schema}.migrations`]);
    }
  } finally {
    await runner.release();
  }
}
