import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Routing by task type: an outbox row carries its task's priority (published as the message
 * priority, and on quorum queues the routing key of the type's high-priority queue), and a worker
 * records the types it serves, so the api can say why a queued task waits ("no worker serves x").
 * Both columns have constant defaults: no table rewrite. The brief ACCESS EXCLUSIVE lock still
 * waits for running transactions (an outbox relay holds its rows across a publish): with a lock
 * timeout the migration fails fast and start-up retries, instead of stalling every submit behind it.
 *
 * Rolling out: rows written by an api of the previous version get priority 0, and workers of that
 * version register no types (the api reports "no worker serves" for their types until they are
 * replaced). Roll the workers first, then the api.
 */
export class RoutingByType1764000000000 implements MigrationInterface {
  name = 'RoutingByType1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`ALTER TABLE outbox ADD COLUMN priority smallint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE workers ADD COLUMN task_types text[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE workers DROP COLUMN task_types`);
    await q.query(`ALTER TABLE outbox DROP COLUMN priority`);
  }
}
