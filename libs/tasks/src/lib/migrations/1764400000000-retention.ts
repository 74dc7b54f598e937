import type { MigrationInterface, QueryRunner } from 'typeorm';

const INDEX = 'tasks_finished_at';
const INDEX_COLUMNS = `(finished_at, id) WHERE status IN ('succeeded','failed','cancelled')`;

/**
 * Retention of finished tasks (libs/tasks/src/lib/retention/task-retention.service.ts):
 * - a partial index on `(finished_at, id)` of terminal tasks, so each deletion batch is a range of it,
 *   oldest first (the id makes the range's end exact when many tasks finished in one statement), never a scan of the table; live tasks get no entry, a task one when it finishes;
 * - problem reports outlive their task: the cascading foreign key of `task_reports.task_id` goes
 *   (the id stays, naming the task the report was about; nothing else joins on it).
 *
 * Without a transaction (`transaction = false`, so the migrations run one transaction each): a
 * table with rows gets its index `CONCURRENTLY`, which blocks no submit or transition while it
 * builds (on 10,000,000 tasks see bench/RESULTS.md). An empty table (a fresh install, each test's
 * schema) gets a plain build, which takes no time: CONCURRENTLY would first wait for every older
 * transaction in the whole database. Every step may be repeated: an interrupted build leaves an
 * INVALID index, which the next run drops and builds again.
 */
export class Retention1764400000000 implements MigrationInterface {
  name = 'Retention1764400000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    // Dropping a foreign key locks both tables for an instant: fail fast behind a long transaction, start-up retries.
    await q.query(`SET lock_timeout = '5s'`);
    try {
      await q.query(`ALTER TABLE task_reports DROP CONSTRAINT IF EXISTS task_reports_task_id_fkey`);
    } finally {
      await q.query(`RESET lock_timeout`);
    }
    const [existing] = await q.query(
      `SELECT i.indisvalid AS valid FROM pg_index i
        WHERE i.indexrelid = to_regclass(quote_ident(current_schema()) || '.${INDEX}')`,
    );
    if (existing && !existing.valid) await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${INDEX}`);
    const [{ empty }] = await q.query(`SELECT NOT EXISTS (SELECT FROM tasks) AS empty`);
    await q.query(`CREATE INDEX ${empty ? '' : 'CONCURRENTLY '}IF NOT EXISTS ${INDEX} ON tasks ${INDEX_COLUMNS}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS ${INDEX}`);
    // NOT VALID: reports of tasks already deleted stay; new ones cascade again as before.
    await q.query(`ALTER TABLE task_reports ADD CONSTRAINT task_reports_task_id_fkey
                   FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE NOT VALID`);
  }
}
