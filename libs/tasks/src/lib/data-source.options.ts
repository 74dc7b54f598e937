import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from './database.config';
import { TASKS_ENTITIES } from './entities';
import { TASKS_MIGRATIONS } from './migrations';

/** @internal pg connection settings shared by the pool and by dedicated LISTEN connections. */
export function pgConnectionConfig(config: Pick<DatabaseConfig, 'DATABASE_URL' | 'DATABASE_SCHEMA'>) {
  return {
    connectionString: config.DATABASE_URL,
    // Unqualified names in hand-written SQL resolve to the configured schema.
    // Prepared statements (preparedQuery) keep PostgreSQL's default plan cache (plan_cache_mode
    // auto): a generic plan after five calls, no planning per call (half of what a one-task claim
    // cost). Their texts are written so that a generic plan made while the tables were empty still
    // looks rows up by key as they grow (prepared-plans.int-spec.ts holds them to it).
    options: `-c search_path=${config.DATABASE_SCHEMA}`,
    application_name: 'tasksys',
  };
}

export function dataSourceOptions(config: DatabaseConfig): DataSourceOptions {
  const pg = pgConnectionConfig(config);
  return {
    type: 'postgres',
    url: pg.connectionString,
    schema: config.DATABASE_SCHEMA,
    entities: TASKS_ENTITIES,
    migrations: TASKS_MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    poolSize: config.DATABASE_POOL_SIZE,
    applicationName: pg.application_name,
    // keepAlive and query_timeout: a connection to a server that vanished (failover, dropped
    // packets) fails in seconds instead of hanging until TCP gives up.
    extra: {
      options: pg.options,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      query_timeout: config.DATABASE_QUERY_TIMEOUT_MS,
    },
  };
}
