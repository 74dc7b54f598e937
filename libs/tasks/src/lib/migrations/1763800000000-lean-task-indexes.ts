import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fewer index entries per task write. A status change is never a HOT update (status is
 * indexed), so every index of `tasks` gets a new entry on each claim and completion:
 * - the idempotency index only holds tasks that have a key (most have none);
 * - `tasks_running_lease` goes: the sweeper and reconcile find running tasks through
 *   `tasks_active_status` (status, updated_at), and heartbeats, which change only
 *   `lease_expires_at`, become HOT updates (no index entries at all);
 * - fillfactor 90 leaves room on each page for those HOT versions.
 * On a large existing table, run the CREATE INDEX by hand with CONCURRENTLY first.
 */
export class LeanTaskIndexes1763800000000 implements MigrationInterface {
  name = 'LeanTaskIndexes1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE UNIQUE INDEX IF NOT EXISTS tasks_owner_idempotency_key_set ON tasks (owner, idempotency_key)
                   WHERE idempotency_key IS NOT NULL`);
    await q.query(`ALTER TABLE tasks DROP CONSTRAINT tasks_owner_idempotency_key`);
    await q.query(`ALTER INDEX tasks_owner_idempotency_key_set RENAME TO tasks_owner_idempotency_key`);
    await q.query(`DROP INDEX tasks_running_lease`);
    await q.query(`ALTER TABLE tasks SET (fillfactor = 90)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks RESET (fillfactor)`);
    await q.query(`CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running'`);
    await q.query(`DROP INDEX tasks_owner_idempotency_key`);
    await q.query(`ALTER TABLE tasks ADD CONSTRAINT tasks_owner_idempotency_key UNIQUE (owner, idempotency_key)`);
  }
}
