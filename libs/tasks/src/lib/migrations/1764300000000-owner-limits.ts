import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-owner quotas (README "Owner quotas"). `owner_limits` holds an admin's limits, NULL meaning
 * unlimited; owners without a row cost nothing. A task the claim holds back because its owner is at
 * `max_running` stays `queued` (or `retrying`) with `held_since` and `held_reason` set: parked in the
 * database, its delivery acked, and the statement that frees one of its owner's running slots wakes
 * it (libs/tasks/src/lib/task-state-machine.ts). The new columns are nullable with no default (no
 * rewrite); `tasks_held` holds held tasks only, in wake order, so finding the next is one descent.
 *
 * The three functions exist for their snapshots. Every claim, wake and limited submit of an owner
 * locks its `owner_limits` row first; a plain statement that waits for that lock still reads the
 * tasks as of its own start and would miss what the holder just committed (a task it held, the
 * runs it started). A VOLATILE PL/pgSQL function takes a fresh snapshot for each query inside it, so
 * what it counts after taking the lock is exact: two claimers can never both see room for the last
 * slot, and a finish never misses a task a claim held a moment before.
 */
export class OwnerLimits1764300000000 implements MigrationInterface {
  name = 'OwnerLimits1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`
      CREATE TABLE owner_limits (
        owner       text PRIMARY KEY,
        max_running int CHECK (max_running >= 1),
        max_queued  int CHECK (max_queued >= 1),
        updated_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`ALTER TABLE tasks ADD COLUMN held_since timestamptz, ADD COLUMN held_reason text`);
    await q.query(`CREATE INDEX tasks_held ON tasks (owner, priority DESC, created_at)
                   WHERE held_since IS NOT NULL AND status IN ('queued', 'retrying')`);

    // Room for new runs of a limited owner (NULL: no maxRunning), under its row lock until commit.
    await q.query(`
      CREATE FUNCTION owner_run_room(p_owner text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
      DECLARE m int; c int;
      BEGIN
        SELECT l.max_running INTO m FROM owner_limits l WHERE l.owner = p_owner FOR UPDATE;
        IF m IS NULL THEN RETURN NULL; END IF;
        SELECT count(*) INTO c FROM tasks t WHERE t.owner = p_owner AND t.status = 'running';
        RETURN m - c;
      END $$`);

    // Wakes up to p_max held tasks of an owner (priority, then age), as many as it has room for: its
    // limit minus its runs (but p_exclude, the runs ending in the calling statement) minus the tasks
    // woken within p_window_ms and not claimed yet (they take the room first; a woken task keeps its
    // held_reason until claimed, which marks it). Fresh submits are not counted: they would starve the
    // held ones under a steady stream. No limit left: up to p_max. Returns what it woke, for the
    // caller's outbox rows.
    await q.query(`
      CREATE FUNCTION owner_wake_held(p_owner text, p_exclude uuid[], p_max int, p_window_ms bigint)
      RETURNS TABLE (id uuid, type text, priority smallint) LANGUAGE plpgsql VOLATILE AS $$
      #variable_conflict use_column
      DECLARE m int; room int;
      BEGIN
        SELECT l.max_running INTO m FROM owner_limits l WHERE l.owner = p_owner FOR UPDATE;
        IF m IS NULL THEN
          room := p_max;
        ELSE
          SELECT m - count(*) FILTER (WHERE t.status = 'running')
                   - count(*) FILTER (WHERE t.status IN ('queued', 'retrying') AND t.held_since IS NULL
                                        AND t.held_reason IS NOT NULL
                                        AND t.updated_at > now() - p_window_ms * interval '1 millisecond')
            INTO room
            FROM tasks t WHERE t.owner = p_owner AND t.status IN ('running', 'queued', 'retrying') AND t.id <> ALL (p_exclude);
          room := least(room, p_max);
        END IF;
        IF room IS NULL OR room <= 0 THEN RETURN; END IF;
        RETURN QUERY
          WITH pick AS (
            SELECT t.id FROM tasks t
             WHERE t.owner = p_owner AND t.held_since IS NOT NULL AND t.status IN ('queued', 'retrying')
             ORDER BY t.priority DESC, t.created_at LIMIT room FOR UPDATE SKIP LOCKED)
          UPDATE tasks t SET held_since = NULL, updated_at = now()
            FROM pick WHERE t.id = pick.id
          RETURNING t.id, t.type, t.priority;
      END $$`);

    // Every statement that frees a running slot now carries an outbox INSERT for the tasks it wakes, which
    // for owners without limits inserts nothing; a statement trigger fires all the same, and each would
    // wake every relay for an empty poll. Notify only when rows were inserted.
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM inserted) THEN PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', ''); END IF;
        RETURN NULL;
      END $$`);
    await q.query(`DROP TRIGGER outbox_notify ON outbox`);
    await q.query(`CREATE TRIGGER outbox_notify AFTER INSERT ON outbox REFERENCING NEW TABLE AS inserted
                   FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`);

    // A limited owner's maxQueued and its non-terminal tasks, under its row lock until commit (no row: no maxQueued).
    await q.query(`
      CREATE FUNCTION owner_queue_count(p_owner text, OUT max_queued int, OUT queued int) LANGUAGE plpgsql VOLATILE AS $$
      BEGIN
        SELECT l.max_queued INTO max_queued FROM owner_limits l WHERE l.owner = p_owner FOR UPDATE;
        IF max_queued IS NULL THEN RETURN; END IF;
        SELECT count(*) INTO queued FROM tasks t
         WHERE t.owner = p_owner AND t.status IN ('new', 'scheduled', 'queued', 'retrying', 'running');
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Held tasks get their messages back first: without the columns nothing would wake them.
    await q.query(`INSERT INTO outbox (exchange, routing_key, correlation_id, body, headers, priority)
                   SELECT 'work', type, id::text, jsonb_build_object('v', 1, 'taskId', id, 'type', type), '{}'::jsonb, priority
                     FROM tasks WHERE held_since IS NOT NULL AND status IN ('queued', 'retrying')`);
    await q.query(`DROP TRIGGER outbox_notify ON outbox`);
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', '');
        RETURN NULL;
      END $$`);
    await q.query(
      `CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`,
    );
    await q.query(`DROP FUNCTION owner_queue_count(text)`);
    await q.query(`DROP FUNCTION owner_wake_held(text, uuid[], int, bigint)`);
    await q.query(`DROP FUNCTION owner_run_room(text)`);
    await q.query(`DROP INDEX tasks_held`);
    await q.query(`ALTER TABLE tasks DROP COLUMN held_since, DROP COLUMN held_reason`);
    await q.query(`DROP TABLE owner_limits`);
  }
}
