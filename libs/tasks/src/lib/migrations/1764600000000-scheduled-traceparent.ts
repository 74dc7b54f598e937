import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A scheduled task keeps the W3C `traceparent` of the request that submitted it until a promoter
 * queues it: its work message is written then, long after the request, and must still belong to the
 * request's trace. Written only for tasks submitted as scheduled (the promotion is its one reader);
 * nullable with no default, so adding it rewrites nothing. Rolling out: a previous-version api writes
 * none (its scheduled tasks start traces of their own when promoted); a previous-version promoter ignores it.
 */
export class ScheduledTraceparent1764600000000 implements MigrationInterface {
  name = 'ScheduledTraceparent1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`ALTER TABLE tasks ADD COLUMN traceparent text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks DROP COLUMN traceparent`);
  }
}
