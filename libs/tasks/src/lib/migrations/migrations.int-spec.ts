import { createTestDatabase, type TestDatabase } from '../../testing';
import { runMigrations } from '../migrate';

const ALL = [
  'InitialSchema1763700000000',
  'LeanTaskIndexes1763800000000',
  'RateLimitCounters1763900000000',
  'RoutingByType1764000000000',
  'ScheduledTasks1764100000000',
  'Schedules1764200000000',
  'OwnerLimits1764300000000',
  'Retention1764400000000',
  'Webhooks1764500000000',
  'ResumableStream1764500000001',
  'ScheduledTraceparent1764600000000',
  'LeanTaskWrites1764700000000',
];

describe('migrations', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
  });
  afterAll(() => t.drop());

  const tables = () =>
    t.db
      .query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [
        t.config.DATABASE_SCHEMA,
      ])
      .then((rows: { table_name: string }[]) => rows.map((r) => r.table_name));

  it('run from empty, are a no-op when repeated concurrently, and revert cleanly', async () => {
    expect(await tables()).toEqual([]);
    const runs = await Promise.all([
      runMigrations(t.db, t.config.DATABASE_SCHEMA),
      runMigrations(t.db, t.config.DATABASE_SCHEMA),
    ]);
    expect(runs.flat()).toEqual(ALL);
    expect(await tables()).toEqual([
      'api_keys',
      'migrations',
      'outbox',
      'owner_limits',
      'rate_limit_counters',
      'schedules',
      'stream_token_keys',
      'task_events',
      'task_progress',
      'task_reports',
      'tasks',
      'webhook_attempts',
      'webhook_deliveries',
      'webhook_secrets',
      'workers',
    ]);

    while ((await t.db.query(`SELECT count(*)::int AS n FROM migrations`))[0].n > 0) {
      await t.db.undoLastMigration({ transaction: 'all' });
    }
    expect(await tables()).toEqual(['migrations']);
    const routines = await t.db.query(
      `SELECT routine_name FROM information_schema.routines WHERE routine_schema = $1`,
      [t.config.DATABASE_SCHEMA],
    );
    expect(routines).toEqual([]);
    // And forward again after a full revert.
    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(ALL);
    // Every index of `tasks` is one more entry per status change (none is a HOT update): the list is deliberate.
    const [partial] = await t.db.query(
      `SELECT i.indisvalid AND i.indisunique AS ok, pg_get_expr(i.indpred, i.indrelid) AS predicate FROM pg_index i WHERE i.indexrelid = 'tasks_owner_idempotency_key_set'::regclass`,
    );
    expect(partial).toEqual({ ok: true, predicate: '(idempotency_key IS NOT NULL)' });
    const indexes = await t.db.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'tasks' ORDER BY 1`,
      [t.config.DATABASE_SCHEMA],
    );
    expect(indexes.map((r: { indexname: string }) => r.indexname)).toEqual([
      'tasks_active_status',
      'tasks_finished_at',
      'tasks_held',
      'tasks_owner_created',
      'tasks_owner_idempotency_key_set',
      'tasks_owner_status_created',
      'tasks_pkey',
      'tasks_retrying_due',
      'tasks_schedule_created',
      'tasks_schedule_fire',
      'tasks_scheduled_due',
    ]);
    // The partial index alone keeps keys unique (1764700000000 dropped the full constraint): the
    // code's ON CONFLICT names its predicate; one without it, as code older than the second migration
    // said, finds no index to match.
    const insert = (predicate: string) =>
      t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, idempotency_key)
         VALUES ('o', 'demo.sleep', '{}', 'new', 1, 1000, 'k') ON CONFLICT (owner, idempotency_key) ${predicate} DO NOTHING RETURNING id`,
      );
    expect(await insert('WHERE idempotency_key IS NOT NULL')).toHaveLength(1);
    expect(await insert('WHERE idempotency_key IS NOT NULL')).toHaveLength(0);
    await expect(insert('')).rejects.toThrow(/no unique or exclusion constraint matching the ON CONFLICT/);
    await expect(
      t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, idempotency_key)
         VALUES ('o', 'demo.sleep', '{}', 'new', 1, 1000, 'k')`,
      ),
    ).rejects.toThrow(/tasks_owner_idempotency_key_set/);
    await t.db.query(`DELETE FROM tasks`);
  });

  it('refuses a hand-built idempotency index that is not the expected unique partial one', async () => {
    await runMigrations(t.db, t.config.DATABASE_SCHEMA);
    // Back to just before the second migration, whatever came after it.
    const applied = async () => (await t.db.query(`SELECT name FROM migrations`)).map((r: { name: string }) => r.name);
    while ((await applied()).includes('LeanTaskIndexes1763800000000'))
      await t.db.undoLastMigration({ transaction: 'all' });
    await t.db.query(`CREATE INDEX tasks_owner_idempotency_key_set ON tasks (owner, idempotency_key)`);
    await expect(runMigrations(t.db, t.config.DATABASE_SCHEMA)).rejects.toThrow(
      /tasks_owner_idempotency_key_set .*not a valid unique index/,
    );
    await t.db.query(`DROP INDEX tasks_owner_idempotency_key_set`);
    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(ALL.slice(1));
  });
});
