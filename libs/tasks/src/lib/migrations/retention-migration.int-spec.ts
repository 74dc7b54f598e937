import { createTestDatabase, type TestDatabase } from '../../testing';
import { runMigrations } from '../migrate';

const indexState = (t: TestDatabase) =>
  t.db.query(
    `SELECT i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
      WHERE i.indexrelid = to_regclass($1)`,
    [`${t.config.DATABASE_SCHEMA}.tasks_finished_at`],
  );

describe('retention migration (1764400000000)', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  /** Back to just before it, with finished rows in the table (a deployment that upgrades). */
  async function beforeIt(): Promise<void> {
    // Undo the later migrations too, then this one (runMigrations below runs them all again).
    for (;;) {
      const [last] = await t.db.query(`SELECT name FROM migrations ORDER BY id DESC LIMIT 1`);
      expect(last.name).toMatch(/^\w+17644\d{8}|^\w+1764[5-9]\d{8}/);
      await t.db.undoLastMigration({ transaction: 'all' });
      if (last.name === 'Retention1764400000000') break;
    }
    expect(await indexState(t)).toEqual([]);
    await t.db.query(`TRUNCATE tasks CASCADE`);
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, finished_at)
       SELECT 'o', 'demo.sleep', '{}', 'succeeded', 1, 1000, now() - g * interval '1 minute' FROM generate_series(1, 1000) g`,
    );
  }

  it('builds its index CONCURRENTLY on a table with rows: writes go on while it waits for older transactions', async () => {
    await beforeIt();
    // An open transaction with a snapshot: CONCURRENTLY waits for it to end, a plain build would not.
    const old = t.db.createQueryRunner();
    await old.connect();
    await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ`);
    await old.query(`SELECT count(*) FROM api_keys`);
    let finished = false;
    const migrating = runMigrations(t.db, t.config.DATABASE_SCHEMA).finally(() => (finished = true));
    try {
      // Meanwhile submits are not blocked by the build.
      const t0 = Date.now();
      await t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms) VALUES ('o', 'demo.sleep', '{}', 'new', 1, 1000)`,
      );
      expect(Date.now() - t0).toBeLessThan(2000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(finished).toBe(false);
    } finally {
      await old.query(`COMMIT`);
      await old.release();
    }
    expect(await migrating).toEqual(expect.arrayContaining(['Retention1764400000000']));
    expect(await indexState(t)).toEqual([
      {
        valid: true,
        def: expect.stringMatching(
          /ON \S+\.tasks USING btree \(finished_at, id\) WHERE \(status = ANY \(ARRAY\['succeeded'::text, 'failed'::text, 'cancelled'::text\]\)\)$/,
        ),
      },
    ]);
    // Reports no longer cascade with their task.
    const [fk] = await t.db.query(
      `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'f'`,
      [`${t.config.DATABASE_SCHEMA}.task_reports`],
    );
    expect(fk.n).toBe(0);
  });

  it('drops and builds again an index an interrupted build left INVALID', async () => {
    await beforeIt();
    await t.db.query(
      `CREATE INDEX tasks_finished_at ON tasks (finished_at, id) WHERE status IN ('succeeded','failed','cancelled')`,
    );
    // What a CONCURRENTLY build killed midway leaves behind.
    await t.db.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)`, [
      `${t.config.DATABASE_SCHEMA}.tasks_finished_at`,
    ]);
    expect(await indexState(t)).toEqual([expect.objectContaining({ valid: false })]);
    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(
      expect.arrayContaining(['Retention1764400000000']),
    );
    expect(await indexState(t)).toEqual([expect.objectContaining({ valid: true })]);
  });
});
