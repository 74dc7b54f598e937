import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The unique index that becomes the primary key of `task_events`, built before the swap. */
const EVENTS_KEY = 'task_events_task_id_id_key';
/**
 * Most bytes a statement's notification payload gets before the rest goes into another one:
 * `pg_notify` refuses 8000 or more (the limit of a default build). One task's entry is at most
 * about 3,100 bytes (its progress message is cut to 500 characters, each at most 6 bytes as JSON),
 * so an entry always fits and the trigger can never fail the statement that fired it.
 */
export const TASK_UPDATES_PAYLOAD_BUDGET = 7900;

/** The task_update_notify trigger as the initial schema made it: a notification per changed row. */
const ROW_TRIGGER_FUNCTION = `
  CREATE OR REPLACE FUNCTION task_update_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.task_updates', json_build_object(
      'id', NEW.id, 'status', NEW.status, 'attempt', NEW.attempt,
      'percent', NEW.progress_percent, 'message', left(NEW.progress_message, 500))::text);
    RETURN NULL;
  END $$`;
const ROW_TRIGGER = `
  CREATE TRIGGER task_update_notify AFTER UPDATE ON tasks FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.progress_percent IS DISTINCT FROM NEW.progress_percent
        OR OLD.progress_message IS DISTINCT FROM NEW.progress_message)
  EXECUTE FUNCTION task_update_notify()`;

/**
 * The statement's changed tasks (status or progress), as JSON arrays `[id, status, attempt, percent,
 * message]` (the format libs/tasks/src/lib/queries/task-update.feed.ts parses), packed into as few
 * notifications as fit under the budget. A statement trigger has no WHEN: the filter is the join.
 */
const STATEMENT_TRIGGER_FUNCTION = `
  CREATE OR REPLACE FUNCTION task_update_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    channel text := TG_TABLE_SCHEMA || '.task_updates';
    item text;
    chunk text := '';
  BEGIN
    FOR item IN
      SELECT json_build_array(n.id, n.status, n.attempt, n.progress_percent, left(n.progress_message, 500))::text
        FROM new_rows n JOIN old_rows o ON o.id = n.id
       WHERE o.status IS DISTINCT FROM n.status
          OR o.progress_percent IS DISTINCT FROM n.progress_percent
          OR o.progress_message IS DISTINCT FROM n.progress_message
    LOOP
      IF chunk <> '' AND octet_length(chunk) + octet_length(item) + 3 > ${TASK_UPDATES_PAYLOAD_BUDGET} THEN
        PERFORM pg_notify(channel, '[' || chunk || ']');
        chunk := '';
      END IF;
      chunk := CASE WHEN chunk = '' THEN item ELSE chunk || ',' || item END;
    END LOOP;
    IF chunk <> '' THEN
      PERFORM pg_notify(channel, '[' || chunk || ']');
    END IF;
    RETURN NULL;
  END $$`;
const STATEMENT_TRIGGER = `
  CREATE TRIGGER task_update_notify AFTER UPDATE ON tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION task_update_notify()`;

/**
 * Fewer, smaller index writes per task (issue 16), each guarantee kept:
 * - `task_events` keeps ONE index per event: its primary key becomes `(task_id, id)` and the separate
 *   `task_events_task (task_id, id)` goes. Every reader looks events up by task (the timeline, the SSE
 *   resume and its latest id, retention's delete, the chaos checks); none by `id` alone. `id` still comes
 *   from the same identity sequence, which `task_progress` shares (1764500000001), so one number still
 *   orders a task's status and progress events; its uniqueness is the sequence's.
 * - `task_events` loses its foreign key to `tasks`: each event insert checked the task's primary key and
 *   locked the task row FOR KEY SHARE again, and each deleted task ran a cascade trigger. The one
 *   deleter of tasks, retention (task-retention.service.ts), deletes the events in the same statement;
 *   transitions lock the task row first and write no event for a task that is gone.
 * - the full unique constraint `tasks_owner_idempotency_key` goes (1763800000000 kept it "until a later
 *   release"; this is it): the partial unique index `tasks_owner_idempotency_key_set` enforces the same
 *   rule for tasks with a key, and tasks without one (most) pay no entry. Every ON CONFLICT in the code
 *   names the predicate form. Code older than 1763800000000 (`ON CONFLICT (owner, idempotency_key)`
 *   without the predicate) fails against this schema: upgrade such a deployment through the release
 *   that added the partial index first.
 * - `task_update_notify` becomes a statement trigger with transition tables: one notification per
 *   statement carrying every task it changed (chunked under the payload limit), not one per row; a
 *   batched claim or completion of 200 tasks sends one or two instead of 200. During a rolling deploy an
 *   api of the previous version cannot read the new payload: its open streams get no live events until
 *   the client reconnects (to a new api), when `Last-Event-ID` replays exactly what it missed. The new
 *   feed reads both payloads, so a rollback (down) is safe for it.
 *
 * Locks. Without a migration transaction (`transaction = false`), so that on a table with rows the new
 * key's unique index is built `CONCURRENTLY`: event inserts go on while it builds (it waits for every
 * older transaction first). An empty table (a fresh install, each test's schema) gets a plain build,
 * which takes no time. Then ONE short transaction swaps the key, drops the old index, the foreign key and
 * the constraint, and replaces the trigger: catalog changes only, milliseconds, but under ACCESS
 * EXCLUSIVE locks on `tasks` and `task_events` (taken together, in the order statements take them, so no
 * deadlock with a transition): while it waits for them, behind a long transaction, every read and write
 * of tasks queues behind it. So the wait is bounded by `lock_timeout` (5 s): past it the migration fails,
 * nothing is changed, and start-up retries. Every step may be repeated: an interrupted build leaves an
 * INVALID index, which the next run drops and builds again; a swap already done is skipped.
 *
 * Measured (bench/lean-writes.ts: the state machine's real statements, 20,000 tasks a round, on a
 * private PostgreSQL 15 with 1,000,000 finished tasks and their events already in the tables; backend
 * CPU per task, median of 3 rounds, this migration alone, ids still random): submit 98 -> 58 us, claim
 * 117 -> 65, completion 153 -> 102, heartbeat 93 -> 80 (within the noise); with UUIDv7 ids as well 35,
 * 41, 95, 80, and WAL per submitted task 8.3 kB -> 3.0 kB (the ids' share: far fewer full-page images).
 * A 200-task claim or completion: 2 notifications instead of 200. The price: a statement trigger with
 * transition tables has every updated row copied into them, heartbeats too (a trigger with transition
 * tables takes no column list, and a statement trigger no WHEN): 6.7 -> 7.8 us of backend CPU per row of
 * a 200-row heartbeat, about 3% of heartbeatMany's cost; 10,000 running tasks heartbeating every 5 s
 * pay 0.2% of a core for it. The events' one index: 131 MB for 3,000,000 events (UUIDv7 task ids),
 * where the two were 71 + 168 MB.
 *
 * down() restores the previous shape inside the migration transaction, with plain builds (they read
 * the whole table under its lock: on a large table build `tasks_owner_idempotency_key` (a UNIQUE index on
 * (owner, idempotency_key)), `task_events_task` and `task_events_id_key` (UNIQUE on (id)) CONCURRENTLY by
 * hand first; down uses them). The foreign key comes back NOT VALID, as 1764400000000's down does:
 * events of tasks deleted meanwhile stay; new ones are checked and cascade again.
 */
export class LeanTaskWrites1764700000000 implements MigrationInterface {
  name = 'LeanTaskWrites1764700000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    const swapped = await this.eventsKeyIsTaskAndId(q);
    if (!swapped) {
      const [existing] = await q.query(
        `SELECT i.indisvalid AS valid FROM pg_index i
          WHERE i.indexrelid = to_regclass(quote_ident(current_schema()) || '.${EVENTS_KEY}')`,
      );
      if (existing && !existing.valid) await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${EVENTS_KEY}`);
      const [{ empty }] = await q.query(`SELECT NOT EXISTS (SELECT FROM task_events) AS empty`);
      await q.query(
        `CREATE UNIQUE INDEX ${empty ? '' : 'CONCURRENTLY '}IF NOT EXISTS ${EVENTS_KEY} ON task_events (task_id, id)`,
      );
    }
    await q.startTransaction();
    try {
      await q.query(`SET LOCAL lock_timeout = '5s'`);
      await q.query(`LOCK TABLE tasks, task_events IN ACCESS EXCLUSIVE MODE`);
      // Never without uniqueness of keys: the partial index must be there, valid, before the constraint goes.
      const [partial] = await q.query(
        `SELECT i.indisvalid AND i.indisunique AND pg_get_expr(i.indpred, i.indrelid) = '(idempotency_key IS NOT NULL)' AS ok
           FROM pg_index i WHERE i.indexrelid = to_regclass(quote_ident(current_schema()) || '.tasks_owner_idempotency_key_set')`,
      );
      if (!partial?.ok)
        throw new Error('tasks_owner_idempotency_key_set is missing or not a valid unique partial index');
      await q.query(`ALTER TABLE task_events DROP CONSTRAINT IF EXISTS task_events_task_id_fkey`);
      if (!(await this.eventsKeyIsTaskAndId(q))) {
        await q.query(`ALTER TABLE task_events DROP CONSTRAINT task_events_pkey,
                       ADD CONSTRAINT task_events_pkey PRIMARY KEY USING INDEX ${EVENTS_KEY}`);
      }
      await q.query(`DROP INDEX IF EXISTS task_events_task`);
      await q.query(`ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_owner_idempotency_key`);
      await q.query(`DROP TRIGGER IF EXISTS task_update_notify ON tasks`);
      await q.query(STATEMENT_TRIGGER_FUNCTION);
      await q.query(STATEMENT_TRIGGER);
      await q.commitTransaction();
    } catch (err) {
      await q.rollbackTransaction();
      throw err;
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`LOCK TABLE tasks, task_events IN ACCESS EXCLUSIVE MODE`);
    await q.query(`DROP TRIGGER task_update_notify ON tasks`);
    await q.query(ROW_TRIGGER_FUNCTION);
    await q.query(ROW_TRIGGER);
    await q.query(`CREATE UNIQUE INDEX IF NOT EXISTS tasks_owner_idempotency_key ON tasks (owner, idempotency_key)`);
    await q.query(`ALTER TABLE tasks ADD CONSTRAINT tasks_owner_idempotency_key
                   UNIQUE USING INDEX tasks_owner_idempotency_key`);
    await q.query(`CREATE INDEX IF NOT EXISTS task_events_task ON task_events (task_id, id)`);
    await q.query(`CREATE UNIQUE INDEX IF NOT EXISTS task_events_id_key ON task_events (id)`);
    await q.query(`ALTER TABLE task_events DROP CONSTRAINT task_events_pkey,
                   ADD CONSTRAINT task_events_pkey PRIMARY KEY USING INDEX task_events_id_key`);
    await q.query(`ALTER TABLE task_events ADD CONSTRAINT task_events_task_id_fkey
                   FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE NOT VALID`);
  }

  private async eventsKeyIsTaskAndId(q: QueryRunner): Promise<boolean> {
    const [key] = await q.query(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
        WHERE c.conrelid = to_regclass(quote_ident(current_schema()) || '.task_events') AND c.contype = 'p'`,
    );
    return key?.def === 'PRIMARY KEY (task_id, id)';
  }
}
