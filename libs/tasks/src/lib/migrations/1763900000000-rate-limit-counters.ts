import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Request counts that every api replica shares, so a rate limit holds for the deployment rather
 * than per process (libs/tasks/src/lib/rate-limit). One row per key and time bucket: `hits`
 * counts requests admitted there plus tokens a replica holds for it, and the bucket counts in the
 * window until `expires_at` (epoch ms: its latest hit plus the window).
 *
 * UNLOGGED: the rows live one window (a minute by default) and are rewritten several times a
 * second per active key, so they skip the write-ahead log (and replication). After a crash of
 * the server the table comes back empty, and after a failover it is empty on the new primary: the
 * limits start over for at most one window. That costs nothing worth a WAL record per request
 * batch; the task data is never in here.
 */
export class RateLimitCounters1763900000000 implements MigrationInterface {
  name = 'RateLimitCounters1763900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE rate_limit_counters (
        key        text NOT NULL,
        bucket     bigint NOT NULL,
        hits       integer NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (key, bucket)
      )`);
    // The clean-up deletes expired buckets in small batches.
    await q.query(`CREATE INDEX rate_limit_counters_expires_at ON rate_limit_counters (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limit_counters`);
  }
}
