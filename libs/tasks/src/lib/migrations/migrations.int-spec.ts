import { createTestDatabase, type TestDatabase } from '../../testing';
import { runMigrations } from '../migrate';

const ALL = ['InitialSchema1763700000000', 'LeanTaskIndexes1763800000000'];

describe('migrations', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
  });
  afterAll(() => t.drop());

  const tables = () =>
    t.db
      .query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [t.config.DATABASE_SCHEMA])
      .then((rows: { table_name: string }[]) => rows.map((r) => r.table_name));

  it('run from empty, are a no-op when repeated concurrently, and revert cleanly', async () => {
    expect(await tables()).toEqual([]);
    const runs = await Promise.all([runMigrations(t.db, t.config.DATABASE_SCHEMA), runMigrations(t.db, t.config.DATABASE_SCHEMA)]);
    expect(runs.flat()).toEqual(ALL);
    expect(await tables()).toEqual(['api_keys', 'migrations', 'outbox', 'task_events', 'task_reports', 'tasks', 'workers']);

    while ((await t.db.query(`SELECT count(*)::int AS n FROM migrations`))[0].n > 0) {
      await t.db.undoLastMigration({ transaction: 'all' });
    }
    expect(await tables()).toEqual(['migrations']);
    const routines = await t.db.query(`SELECT routine_name FROM information_schema.routines WHERE routine_schema = $1`, [
      t.config.DATABASE_SCHEMA,
    ]);
    expect(routines).toEqual([]);
    // And forward again after a full revert.
    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(ALL);
    // Every index of `tasks` is one more entry per status change (none is a HOT update): the list is deliberate.
    const indexes = await t.db.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'tasks' ORDER BY 1`, [
      t.config.DATABASE_SCHEMA,
    ]);
    expect(indexes.map((r: { indexname: string }) => r.indexname)).toEqual([
      'tasks_active_status',
      'tasks_owner_created',
      'tasks_owner_idempotency_key',
      'tasks_owner_status_created',
      'tasks_pkey',
      'tasks_retrying_due',
    ]);
  });
});
