import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cron schedules (libs/tasks/src/lib/schedules): a `schedules` table, owner-scoped (a name is unique per
 * owner), and on `tasks` the schedule a task was fired by and the fire time it was fired for. The UNIQUE
 * partial index on (schedule_id, scheduled_for) is what makes a fire exactly once, however many firers run:
 * a second insert for the same slot is a no-op (ON CONFLICT DO NOTHING), whatever locks did or did not do.
 * A second partial index serves `GET /v1/tasks?scheduleId=` (newest first, keyset on created_at, id);
 * tasks that no schedule fired pay no entry in either. Both new task columns are nullable with no default:
 * no table rewrite. `schedules_due` holds active schedules only: the firers' idle probe is one descent.
 * The task columns carry the CHECKs of `tasks`: a schedule can never hold a task the tasks table would refuse,
 * which would fail every fire batch it is in (a poison schedule stopping the others).
 * A trigger NOTIFYs `<schema>.schedules` on every change, so firers wake for a new or changed schedule.
 * No foreign key from tasks: deleting a schedule stops its fires and leaves its runs (and their key) as they are.
 *
 * Rolling out: an old api neither fires nor lists schedules; an old worker runs fired tasks like any.
 */
export class Schedules1764200000000 implements MigrationInterface {
  name = 'Schedules1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`CREATE TABLE schedules (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      owner text NOT NULL,
      name text NOT NULL,
      cron text NOT NULL,
      timezone text NOT NULL DEFAULT 'UTC',
      task_type text NOT NULL,
      task_payload jsonb NOT NULL,
      task_priority smallint NOT NULL DEFAULT 0 CHECK (task_priority BETWEEN 0 AND 9),
      task_max_attempts int NOT NULL CHECK (task_max_attempts BETWEEN 1 AND 100),
      task_timeout_ms int NOT NULL CHECK (task_timeout_ms > 0),
      overlap text NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
      paused boolean NOT NULL DEFAULT false,
      next_run_at timestamptz NOT NULL,
      last_fired_at timestamptz,
      last_task_id uuid,
      fired_count bigint NOT NULL DEFAULT 0,
      skipped_count bigint NOT NULL DEFAULT 0,
      last_skipped_at timestamptz,
      missed_count bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT schedules_owner_name UNIQUE (owner, name))`);
    await q.query(`CREATE INDEX schedules_due ON schedules (next_run_at) WHERE NOT paused`);
    await q.query(`CREATE INDEX schedules_owner_created ON schedules (owner, created_at DESC, id DESC)`);
    await q.query(`ALTER TABLE tasks ADD COLUMN schedule_id uuid, ADD COLUMN scheduled_for timestamptz`);
    await q.query(
      `CREATE UNIQUE INDEX tasks_schedule_fire ON tasks (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX tasks_schedule_created ON tasks (schedule_id, created_at DESC, id DESC) WHERE schedule_id IS NOT NULL`,
    );
    await q.query(`CREATE FUNCTION schedules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.schedules', '');
        RETURN NULL;
      END $$`);
    // Per statement: a firer's round (one UPDATE of many schedules) is one notification, and firers ignore their own.
    await q.query(`CREATE TRIGGER schedules_changed AFTER INSERT OR UPDATE OF cron, timezone, paused, next_run_at OR DELETE
                   ON schedules FOR EACH STATEMENT EXECUTE FUNCTION schedules_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX tasks_schedule_created`);
    await q.query(`DROP INDEX tasks_schedule_fire`);
    await q.query(`ALTER TABLE tasks DROP COLUMN scheduled_for, DROP COLUMN schedule_id`);
    await q.query(`DROP TABLE schedules`);
    await q.query(`DROP FUNCTION schedules_notify()`);
  }
}
