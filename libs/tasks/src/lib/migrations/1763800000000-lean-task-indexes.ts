import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fewer index entries per task write. A status change is never a HOT update (status is
 * indexed), so every index of `tasks` gets a new entry on each claim and completion:
 * - `tasks_running_lease` goes: the sweeper and reconcile find running tasks through
 *   `tasks_active_status` (status, updated_at), and heartbeats, which change only
 *   `lease_expires_at`, become HOT updates (no index entries at all);
 * - fillfactor 90 leaves room on each page for those HOT versions;
 * - a partial unique index holds only tasks that have an idempotency key. The full constraint
 *   stays until a later release: code older than this migration says `ON CONFLICT (owner,
 *   idempotency_key)` without the predicate, which only the constraint matches, and such code
 *   may still run during a rolling deploy or after a rollback. Dropping it then saves one index
 *   entry per write of a task without a key.
 * On a large table, build `tasks_owner_idempotency_key_set` by hand first with
 * `CREATE UNIQUE INDEX CONCURRENTLY ... WHERE idempotency_key IS NOT NULL`; it is checked here.
 */
export class LeanTaskIndexes1763800000000 implements MigrationInterface {
  name = 'LeanTaskIndexes1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE UNIQUE INDEX IF NOT EXISTS tasks_owner_idempotency_key_set ON tasks (owner, idempotency_key)
                   WHERE idempotency_key IS NOT NULL`);
    // A hand-built index of that name may have failed (INVALID) or differ: refuse to go on with it.
    const [index] = await q.query(
      `SELECT i.indisvalid AND i.indisunique AND pg_get_expr(i.indpred, i.indrelid) = '(idempotency_key IS NOT NULL)'
              AND pg_get_indexdef(i.indexrelid) LIKE '%(owner, idempotency_key)%' AS ok
         FROM pg_index i WHERE i.indexrelid = 'tasks_owner_idempotency_key_set'::regclass`,
    );
    if (!index?.ok) {
      throw new Error(
        'index tasks_owner_idempotency_key_set exists but is not a valid unique index on (owner, idempotency_key) WHERE idempotency_key IS NOT NULL: drop it and migrate again',
      );
    }
    await q.query(`DROP INDEX tasks_running_lease`);
    await q.query(`ALTER TABLE tasks SET (fillfactor = 90)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks RESET (fillfactor)`);
    await q.query(`CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running'`);
    await q.query(`DROP INDEX tasks_owner_idempotency_key_set`);
  }
}
