import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** `prefix` and random hex: a schema, database or broker namespace no other run uses (`test_3f9a…`). */
export function uniqueName(prefix: string, bytes = 6): string {
  return `${prefix}${randomBytes(bytes).toString('hex')}`;
}

/**
 * The PostgreSQL the tests use: TEST_DATABASE_URL, else DATABASE_URL, else the local one; with
 * `database`, the same server and credentials on that database.
 */
export function testDatabaseUrl(database?: string): string {
  const url =
    process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/tasks';
  if (database === undefined) return url;
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** The RabbitMQ the tests use: TEST_RABBITMQ_URL, else the local one. */
export function testRabbitmqUrl(): string {
  return process.env['TEST_RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
}

export interface ScratchDatabase {
  /** The database's name, `<prefix><random hex>`. */
  name: string;
  /** testDatabaseUrl() pointed at it. */
  url: string;
  /** Drops it, cutting any session still in it. */
  drop(): Promise<void>;
}

/**
 * A whole database of its own on the test server, for a test whose subject is the database itself
 * (its statistics, its sessions); a test that needs tables wants a schema (createTestDatabase).
 */
export async function createScratchDatabase(prefix = 'scratch_'): Promise<ScratchDatabase> {
  const name = uniqueName(prefix, 5);
  await onServer((server) => server.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: testDatabaseUrl(name),
    drop: () =>
      onServer((server) => server.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

async function onServer<T>(work: (server: Client) => Promise<T>): Promise<T> {
  const server = new Client({ connectionString: testDatabaseUrl() });
  await server.connect();
  try {
    return await work(server);
  } finally {
    await server.end();
  }
}
