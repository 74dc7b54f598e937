import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Routing by task type: an outbox row carries its task's priority (published as the message
 * priority, and on quorum queues the routing key of the type's high-priority queue), and a worker
 * records the types it serves, so the api can say why a queued task waits ("no worker serves x").
 * Both columns have constant defaults: no table rewrite, no long lock.
 */
export class RoutingByType1764000000000 implements MigrationInterface {
  name = 'RoutingByType1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbox ADD COLUMN priority smallint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE workers ADD COLUMN task_types text[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE workers DROP COLUMN task_types`);
    await q.query(`ALTER TABLE outbox DROP COLUMN priority`);
  }
}
