import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../database.config';
import { dataSourceOptions } from '../data-source.options';
import { runMigrations } from '../migrate';

export interface TestDatabase {
  config: DatabaseConfig;
  db: DataSource;
  /** Drops the schema and closes the pool. */
  drop(): Promise<void>;
}

/**
 * A migrated schema of its own for one test file, on the local PostgreSQL (or TEST_DATABASE_URL),
 * so runs can overlap and a crashed run leaves nothing the next one trips on.
 */
export async function createTestDatabase(opts: { migrate?: boolean; poolSize?: number } = {}): Promise<TestDatabase> {
  const config: DatabaseConfig = {
    DATABASE_URL: process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/tasks',
    DATABASE_SCHEMA: `test_${randomBytes(6).toString('hex')}`,
    DATABASE_POOL_SIZE: opts.poolSize ?? 30,
    DATABASE_MIGRATE: true,
    DATABASE_QUERY_TIMEOUT_MS: 60_000,
  };
  const db = new DataSource(dataSourceOptions(config));
  await db.initialize();
  if (opts.migrate ?? true) await runMigrations(db, config.DATABASE_SCHEMA);
  else await db.query(`CREATE SCHEMA "${config.DATABASE_SCHEMA}"`);
  return {
    config,
    db,
    async drop() {
      await db.query(`DROP SCHEMA IF EXISTS "${config.DATABASE_SCHEMA}" CASCADE`);
      await db.destroy();
    },
  };
}
