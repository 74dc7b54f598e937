import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Completion webhooks (libs/tasks/src/lib/webhooks/). `tasks.callback_url` is nullable with no default:
 * no table rewrite. Every terminal transition of a task with one writes a `webhook_deliveries` row in
 * the same statement, holding the task row as the transition left it (`task`), so every attempt sends
 * the same bytes even if the task is retried later. The dispatcher claims due rows (`next_attempt_at`,
 * which a claim pushes past the attempt's timeout: a lease, so a killed api's attempt is claimed again)
 * with SKIP LOCKED; `attempts` is its fencing token. A statement-level trigger wakes the dispatchers on
 * commit when a statement inserted any. `webhook_secrets` keeps each owner's signing secrets: the current one
 * (`expires_at` null) and the previous one for a day after a rotation.
 */
export class Webhooks1764500000000 implements MigrationInterface {
  name = 'Webhooks1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '5s'`);
    await q.query(`ALTER TABLE tasks ADD COLUMN callback_url text`);
    await q.query(
      `ALTER TABLE tasks ADD CONSTRAINT tasks_callback_url_length CHECK (length(callback_url) <= 2048) NOT VALID`,
    );
    await q.query(`
      CREATE TABLE webhook_deliveries (
        id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        task_id         uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        owner           text NOT NULL,
        url             text NOT NULL,
        event_type      text NOT NULL,
        task            jsonb NOT NULL,
        status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','succeeded','failed')),
        attempts        int NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_attempt_at timestamptz,
        last_status_code int,
        last_error      text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        finished_at     timestamptz
      )`);
    // Dispatchers only look at pending rows: the partial index stays small with millions delivered.
    await q.query(
      `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
    );
    await q.query(`CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id, created_at)`);
    // Failing endpoints for the console: recent deliveries with a failed last attempt, by owner and url.
    await q.query(`CREATE INDEX webhook_deliveries_failing ON webhook_deliveries (last_attempt_at DESC)
                   WHERE last_error IS NOT NULL AND status <> 'succeeded'`);
    await q.query(`
      CREATE TABLE webhook_attempts (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        attempt     int NOT NULL,
        at          timestamptz NOT NULL DEFAULT now(),
        duration_ms int NOT NULL,
        status_code int,
        error       text
      )`);
    await q.query(`CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id)`);
    await q.query(`
      CREATE TABLE webhook_secrets (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner      text NOT NULL,
        secret     text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX webhook_secrets_current ON webhook_secrets (owner) WHERE expires_at IS NULL`);
    await q.query(`CREATE INDEX webhook_secrets_owner ON webhook_secrets (owner, id DESC)`);
    await q.query(`
      CREATE FUNCTION webhook_deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- A statement trigger fires for every terminal transition, most of which insert nothing here.
        IF EXISTS (SELECT 1 FROM inserted) THEN
          PERFORM pg_notify(TG_TABLE_SCHEMA || '.webhooks', '');
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
                   REFERENCING NEW TABLE AS inserted
                   FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER webhook_deliveries_notify ON webhook_deliveries`);
    await q.query(`DROP FUNCTION webhook_deliveries_notify()`);
    await q.query(`DROP TABLE webhook_secrets`);
    await q.query(`DROP TABLE webhook_attempts`);
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`ALTER TABLE tasks DROP CONSTRAINT tasks_callback_url_length`);
    await q.query(`ALTER TABLE tasks DROP COLUMN callback_url`);
  }
}
