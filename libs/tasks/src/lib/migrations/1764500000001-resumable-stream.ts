import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Resumable live progress: every progress update is kept as a row of `task_progress`, numbered from
 * the SAME sequence as `task_events`, so one number orders all of a task's events (the SSE `id:`).
 * Both are allocated while the statement holds the task's row lock, so per task they increase in
 * commit order and a reader that saw id N never later finds a row below N. The row is narrow and
 * written by the progress statement itself: one more index insert per progress write.
 */
export class ResumableStream1764500000001 implements MigrationInterface {
  name = 'ResumableStream1764500000001';

  async up(q: QueryRunner): Promise<void> {
    const [{ seq }] = await q.query(`SELECT pg_get_serial_sequence('task_events', 'id') AS seq`);
    await q.query(`
      CREATE TABLE task_progress (
        id       bigint NOT NULL DEFAULT nextval('${seq}'::regclass),
        task_id  uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        attempt  int NOT NULL,
        percent  smallint NOT NULL,
        message  text,
        at       timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (task_id, id)
      )`);
    await q.query(`
      CREATE TABLE stream_token_keys (
        id         int PRIMARY KEY CHECK (id = 1),
        key        bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE stream_token_keys`);
    await q.query(`DROP TABLE task_progress`);
  }
}
