import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The task store. Hand-written so every index and constraint is deliberate.
 * Tables are created in the connection's search_path (the configured schema).
 */
export class InitialSchema1763700000000 implements MigrationInterface {
  name = 'InitialSchema1763700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tasks (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        owner            text NOT NULL,
        type             text NOT NULL,
        payload          jsonb NOT NULL,
        status           text NOT NULL
                         CHECK (status IN ('new','queued','running','retrying','succeeded','failed','cancelled')),
        attempt          int NOT NULL DEFAULT 0 CHECK (attempt >= 0),
        attempt_base     int NOT NULL DEFAULT 0 CHECK (attempt_base >= 0 AND attempt_base <= attempt),
        max_attempts     int NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
        timeout_ms       int NOT NULL CHECK (timeout_ms > 0),
        priority         smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
        lease_owner      text,
        lease_expires_at timestamptz,
        run_after        timestamptz,
        progress_percent smallint NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
        progress_message text,
        result           jsonb,
        error            jsonb,
        idempotency_key  text,
        request_hash     text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        started_at       timestamptz,
        finished_at      timestamptz,
        CONSTRAINT tasks_owner_idempotency_key UNIQUE (owner, idempotency_key),
        CONSTRAINT tasks_running_has_lease CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
      )`);
    // Listing an owner's tasks, newest first, with keyset pagination.
    await q.query(`CREATE INDEX tasks_owner_created ON tasks (owner, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX tasks_owner_status_created ON tasks (owner, status, created_at DESC, id DESC)`);
    // Hot paths only ever look at live tasks: partial indexes stay small with millions of finished ones.
    await q.query(`CREATE INDEX tasks_active_status ON tasks (status, updated_at)
                   WHERE status IN ('new','queued','running','retrying')`);
    await q.query(`CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running'`);
    await q.query(`CREATE INDEX tasks_retrying_due ON tasks (run_after) WHERE status = 'retrying'`);

    await q.query(`
      CREATE TABLE task_events (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        at          timestamptz NOT NULL DEFAULT clock_timestamp(),
        from_status text,
        to_status   text NOT NULL,
        attempt     int NOT NULL,
        actor       text NOT NULL,
        error       jsonb
      )`);
    await q.query(`CREATE INDEX task_events_task ON task_events (task_id, id)`);

    await q.query(`
      CREATE TABLE outbox (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        exchange         text NOT NULL,
        routing_key      text NOT NULL,
        message_id       uuid NOT NULL DEFAULT gen_random_uuid(),
        correlation_id   text,
        body             jsonb NOT NULL,
        headers          jsonb NOT NULL DEFAULT '{}',
        created_at       timestamptz NOT NULL DEFAULT now(),
        publish_attempts int NOT NULL DEFAULT 0,
        last_error       text
      )`);
    // Wake relays on commit; one notification per inserting statement, not per row.
    await q.query(`
      CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', '');
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
                   FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`);

    // Live status and progress for SSE subscribers, sent on commit.
    await q.query(`
      CREATE FUNCTION task_update_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.task_updates', json_build_object(
          'id', NEW.id, 'status', NEW.status, 'attempt', NEW.attempt,
          'percent', NEW.progress_percent, 'message', left(NEW.progress_message, 500))::text);
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER task_update_notify AFTER UPDATE ON tasks FOR EACH ROW
                   WHEN (OLD.status IS DISTINCT FROM NEW.status
                         OR OLD.progress_percent IS DISTINCT FROM NEW.progress_percent
                         OR OLD.progress_message IS DISTINCT FROM NEW.progress_message)
                   EXECUTE FUNCTION task_update_notify()`);

    await q.query(`
      CREATE TABLE api_keys (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        key_hash   text NOT NULL UNIQUE,
        owner      text NOT NULL,
        role       text NOT NULL CHECK (role IN ('user','admin')),
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);

    await q.query(`
      CREATE TABLE task_reports (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        owner      text NOT NULL,
        message    text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX task_reports_created ON task_reports (created_at DESC)`);

    await q.query(`
      CREATE TABLE workers (
        id           text PRIMARY KEY,
        host         text NOT NULL,
        pid          int NOT NULL,
        concurrency  int NOT NULL,
        in_flight    int NOT NULL DEFAULT 0,
        started_at   timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        stopped_at   timestamptz
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE workers`);
    await q.query(`DROP TABLE task_reports`);
    await q.query(`DROP TABLE api_keys`);
    await q.query(`DROP TRIGGER task_update_notify ON tasks`);
    await q.query(`DROP FUNCTION task_update_notify()`);
    await q.query(`DROP TABLE outbox`);
    await q.query(`DROP FUNCTION outbox_notify()`);
    await q.query(`DROP TABLE task_events`);
    await q.query(`DROP TABLE tasks`);
  }
}
