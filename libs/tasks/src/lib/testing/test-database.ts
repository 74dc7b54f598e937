import { DataSource } from 'typeorm';
import { testDatabaseUrl, uniqueName } from '@tasksys/testing';
import { dataSourceOptions } from '../data-source.options';
import type { DatabaseConfig } from '../database.config';
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
    DATABASE_URL: testDatabaseUrl(),
    DATABASE_SCHEMA: uniqueName('test_'),
    DATABASE_POOL_SIZE: opts.poolSize ?? 30,
    DATABASE_MIGRATE: true,
    DATABASE_QUERY_TIMEOUT_MS: 60_000,
    TASK_BUNDLE_SIZE: 100,
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
