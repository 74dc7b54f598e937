import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATUSES_BEFORE = `'new','queued','running','retrying','succeeded','failed','cancelled'`;

/**
 * Delayed start: a task due later waits as `scheduled` until its `run_at`, then a worker's
 * promoter queues it (libs/tasks/src/lib/execution/task-promoter.service.ts). `run_at` is nullable
 * with no default: no table rewrite. The status CHECK is replaced by a wider one added NOT VALID:
 * every existing row passed the narrower check, so validating would only scan the whole table under
 * the ACCESS EXCLUSIVE lock to learn nothing; new rows are checked either way. The partial index
 * holds scheduled tasks only, so the promoter's probe for the earliest due one is one index descent
 * per type it serves however many wait, and tasks of other states pay no index entry for it. It leads
 * with the type: a worker serves some types only, and on `(run_at)` alone its probe would walk past
 * every earlier task of the types it does not serve. Building it scans the table once under a SHARE
 * lock (writes wait for the scan): on a large table build it by hand first with
 * `CREATE INDEX CONCURRENTLY tasks_scheduled_due ON tasks (type, run_at) WHERE status = 'scheduled'`.
 *
 * Rolling out: apis and workers of the previous version never write `scheduled`; roll the workers
 * first (they promote), then the api (it accepts `runAt`/`delayMs`).
 */
export class ScheduledTasks1764100000000 implements MigrationInterface {
  name = 'ScheduledTasks1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`ALTER TABLE tasks ADD COLUMN run_at timestamptz`);
    await q.query(`ALTER TABLE tasks DROP CONSTRAINT tasks_status_check`);
    await q.query(`ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
                   CHECK (status IN (${STATUSES_BEFORE},'scheduled')) NOT VALID`);
    await q.query(`CREATE INDEX IF NOT EXISTS tasks_scheduled_due ON tasks (type, run_at) WHERE status = 'scheduled'`);
  }

  async down(q: QueryRunner): Promise<void> {
    // The old check has no `scheduled`: waiting tasks go back to `new` (an operator starts them), never run early.
    await q.query(`UPDATE tasks SET status = 'new' WHERE status = 'scheduled'`);
    await q.query(`DROP INDEX tasks_scheduled_due`);
    await q.query(`ALTER TABLE tasks DROP CONSTRAINT tasks_status_check`);
    await q.query(`ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN (${STATUSES_BEFORE}))`);
    await q.query(`ALTER TABLE tasks DROP COLUMN run_at`);
  }
}
