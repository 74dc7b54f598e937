import { DataSource } from 'typeorm';
import { TASKS_MIGRATIONS } from '.';
import { createTestDatabase, type TestDatabase } from '../../testing';
import { dataSourceOptions } from '../data-source.options';
import { runMigrations } from '../migrate';
import { TASK_TIMELINE_SQL } from '../queries/task.queries';
import { DELETE_BATCH_SQL } from '../retention/task-retention.service';
import { TASK_STREAM_AFTER_SQL, TASK_STREAM_CURRENT_SQL } from '../stream/task-event-log';
import { TaskStateMachine } from '../task-state-machine';
import { LeanTaskWrites1764700000000 } from './1764700000000-lean-task-writes';

const NAME = 'LeanTaskWrites1764700000000';
const TASKS = 5000;
const EVENTS_PER_TASK = 4;

// Waits for notifications and builds indexes: on a loaded machine more than Jest's 5-s default.
jest.setTimeout(30_000);

/** What the migration changes, as the catalog describes it: constraints, indexes and triggers of both tables, the trigger's function. */
async function shape(t: TestDatabase) {
  const [row] = await t.db.query(
    `SELECT
       (SELECT json_agg(c.conname || ' ' || pg_get_constraintdef(c.oid) ORDER BY c.conname) FROM pg_constraint c
         WHERE c.conrelid IN ('tasks'::regclass, 'task_events'::regclass)) AS constraints,
       (SELECT json_agg(i.indexname || ' ' || i.indexdef ORDER BY i.indexname) FROM pg_indexes i
         WHERE i.schemaname = current_schema() AND i.tablename IN ('tasks', 'task_events')) AS indexes,
       (SELECT json_agg(pg_get_triggerdef(g.oid) ORDER BY g.tgname) FROM pg_trigger g
         WHERE g.tgrelid = 'tasks'::regclass AND NOT g.tgisinternal) AS triggers,
       pg_get_functiondef('task_update_notify'::regproc) AS function`,
  );
  return row as { constraints: string[]; indexes: string[]; triggers: string[]; function: string };
}

/** Node types and the index or table each reads, depth first. */
async function planOf(t: TestDatabase, sql: string, params: unknown[]): Promise<string[]> {
  const [{ 'QUERY PLAN': plan }] = await t.db.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
  const nodes: string[] = [];
  const walk = (node: Record<string, any>) => {
    nodes.push(`${node['Node Type']} ${node['Index Name'] ?? node['Relation Name'] ?? ''}`.trim());
    for (const child of node['Plans'] ?? []) walk(child);
  };
  walk(plan[0]['Plan']);
  return nodes;
}

describe(`lean task writes migration (1764700000000)`, () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  /** The schema as the migrations before this one made it (never through this one's down). */
  let before: Awaited<ReturnType<typeof shape>>;

  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
    const previous = new DataSource({
      ...dataSourceOptions(t.config),
      migrations: TASKS_MIGRATIONS.slice(0, TASKS_MIGRATIONS.indexOf(LeanTaskWrites1764700000000)),
    });
    await previous.initialize();
    try {
      await previous.runMigrations({ transaction: 'each' });
    } finally {
      await previous.destroy();
    }
    before = await shape(t);
    sm = new TaskStateMachine(t.db);
  });
  afterAll(() => t.drop());

  const events = async () =>
    (await t.db.query(`SELECT count(*)::int AS n, sum(id)::text AS ids FROM task_events`))[0] as {
      n: number;
      ids: string;
    };

  /** Back to just before it, with tasks, events and progress in the tables (a deployment that upgrades). */
  async function beforeIt(): Promise<void> {
    // Undo the later migrations too, then this one (runMigrations runs them all again).
    const applied = async () => (await t.db.query(`SELECT name FROM migrations`)).map((r: { name: string }) => r.name);
    while ((await applied()).includes(NAME)) await t.db.undoLastMigration({ transaction: 'all' });
    await t.db.query(`TRUNCATE tasks, task_events, task_progress, outbox CASCADE`);
    await t.db.query(
      `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, attempt, lease_owner, lease_expires_at)
       SELECT 'o' || g % 50, 'demo.sleep', '{}', 'running', 3, 60000, 1, 'w1', now() + interval '1 hour'
         FROM generate_series(1, ${TASKS}) g`,
    );
    await t.db.query(
      `INSERT INTO task_events (task_id, from_status, to_status, attempt, actor)
       SELECT t.id, NULL, 'queued', 0, 'owner:o' FROM tasks t CROSS JOIN generate_series(1, ${EVENTS_PER_TASK}) g`,
    );
    await t.db.query(
      `INSERT INTO task_progress (task_id, attempt, percent) SELECT t.id, 1, 50 FROM tasks t ORDER BY t.id LIMIT 1000`,
    );
    await t.db.query(`ANALYZE tasks; ANALYZE task_events; ANALYZE task_progress`);
  }

  it('upgrades tables with rows: the new key built CONCURRENTLY while events are written, every event kept', async () => {
    await beforeIt();
    expect(await shape(t)).toEqual(before);
    expect(before.indexes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^task_events_task /),
        expect.stringMatching(/^task_events_pkey .*\(id\)$/),
      ]),
    );
    const kept = await events();
    expect(kept.n).toBe(TASKS * EVENTS_PER_TASK);
    // An open transaction with a snapshot: CONCURRENTLY waits for it to end, a plain build would not.
    const old = t.db.createQueryRunner();
    await old.connect();
    await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ`);
    await old.query(`SELECT count(*) FROM api_keys`);
    let finished = false;
    const migrating = runMigrations(t.db, t.config.DATABASE_SCHEMA).finally(() => (finished = true));
    let written = '';
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // the build has started and waits
      const t0 = Date.now();
      const [task] = await t.db.query(`SELECT id FROM tasks LIMIT 1`);
      [{ id: written }] = await t.db.query(
        `INSERT INTO task_events (task_id, to_status, attempt, actor) VALUES ($1, 'running', 1, 'w1') RETURNING id::text`,
        [task.id],
      );
      expect(Date.now() - t0).toBeLessThan(2000);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(finished).toBe(false);
    } finally {
      await old.query(`COMMIT`);
      await old.release();
    }
    expect(await migrating).toEqual(expect.arrayContaining([NAME]));

    const after = await shape(t);
    expect(after.constraints.filter((c) => /^task_events_/.test(c))).toEqual([
      'task_events_pkey PRIMARY KEY (task_id, id)',
    ]);
    expect(after.constraints.filter((c) => /^tasks_owner_idempotency_key/.test(c))).toEqual([]);
    expect(after.indexes.filter((i) => /^task_events_/.test(i))).toEqual([
      expect.stringMatching(
        /^task_events_pkey CREATE UNIQUE INDEX task_events_pkey ON \S+\.task_events USING btree \(task_id, id\)$/,
      ),
    ]);
    expect(after.indexes.filter((i) => /^tasks_owner_idempotency_key/.test(i))).toEqual([
      expect.stringMatching(/^tasks_owner_idempotency_key_set .* WHERE \(idempotency_key IS NOT NULL\)$/),
    ]);
    expect(after.triggers).toEqual([
      expect.stringMatching(
        /^CREATE TRIGGER task_update_notify AFTER UPDATE ON \S+\.tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION/,
      ),
    ]);
    // Every event kept, ids as they were; the next one still comes from the shared sequence, after the last.
    const now = await events();
    expect(now.n).toBe(kept.n + 1);
    expect(BigInt(now.ids)).toBe(BigInt(kept.ids) + BigInt(written));
    const [task] = await t.db.query(`SELECT id FROM tasks ORDER BY id LIMIT 1`);
    expect((await sm.succeed(task.id, 1, null, 'w1')).applied).toBe(true);
    const [{ max }] = await t.db.query(`SELECT max(id)::text AS max FROM task_events`);
    const [{ progress }] = await t.db.query(`SELECT max(id)::text AS progress FROM task_progress`);
    expect(BigInt(max)).toBeGreaterThan(BigInt(written));
    expect(BigInt(max)).toBeGreaterThan(BigInt(progress));
    // No foreign key any more: an event row no longer locks or probes its task (retention deletes both).
    await expect(
      t.db.query(
        `INSERT INTO task_events (task_id, to_status, attempt, actor) VALUES ('00000000-0000-7000-8000-000000000000', 'queued', 0, 'x')`,
      ),
    ).resolves.toBeDefined();
    await t.db.query(`DELETE FROM task_events WHERE task_id = '00000000-0000-7000-8000-000000000000'`);
  });

  it('leaves nothing reading events without an index: the timeline, the stream resume and retention use the new key (EXPLAIN)', async () => {
    await t.db.query(`ANALYZE task_events`);
    const [task] = await t.db.query(`SELECT id FROM tasks ORDER BY id DESC LIMIT 1`);
    const plans = {
      timeline: await planOf(t, TASK_TIMELINE_SQL, [task.id, 1000]),
      current: await planOf(t, TASK_STREAM_CURRENT_SQL, [task.id]),
      resume: await planOf(t, TASK_STREAM_AFTER_SQL, [task.id, '0', 500]),
      retention: await planOf(t, DELETE_BATCH_SQL, [
        new Date().toISOString(),
        '-infinity',
        '00000000-0000-0000-0000-000000000000',
        1000,
      ]),
    };
    for (const [query, nodes] of Object.entries(plans)) {
      expect({ query, seqScans: nodes.filter((n) => /^Seq Scan task_(events|progress)$/.test(n)) }).toEqual({
        query,
        seqScans: [],
      });
      expect({
        query,
        readsByKey: nodes.some((n) => /^(Index|Index Only|Bitmap Index) Scan task_events_pkey$/.test(n)),
      }).toEqual({
        query,
        readsByKey: true,
      });
    }
  });

  it('reverts on tables with rows to the shape before it (the foreign key NOT VALID), and upgrades again', async () => {
    const kept = await events();
    await t.db.undoLastMigration({ transaction: 'all' });
    const reverted = await shape(t);
    expect(reverted.constraints).toContain(
      'task_events_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks(id) ON DELETE CASCADE NOT VALID',
    );
    // The function's text as written (its layout differs from the initial schema's), compared word by word.
    const words = (s: Awaited<ReturnType<typeof shape>>) => ({ ...s, function: s.function.replace(/\s+/g, ' ') });
    expect(
      words({
        ...reverted,
        constraints: reverted.constraints.map((c) => c.replace(/^(task_events_task_id_fkey .*) NOT VALID$/, '$1')),
      }),
    ).toEqual(words(before));
    expect(await events()).toEqual(kept);
    // The per-row trigger is back, and with it the full constraint that pre-1763800000000 code needs.
    await expect(
      t.db.query(
        `INSERT INTO tasks (owner, type, payload, status, max_attempts, timeout_ms, idempotency_key)
         VALUES ('o', 'demo.sleep', '{}', 'new', 1, 1000, 'k') ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING id`,
      ),
    ).resolves.toHaveLength(1);

    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(expect.arrayContaining([NAME]));
    const again = await shape(t);
    expect(again.constraints.filter((c) => /^task_events_/.test(c))).toEqual([
      'task_events_pkey PRIMARY KEY (task_id, id)',
    ]);
    expect(await events()).toEqual(kept);
  });

  it('fails fast behind a long transaction, changing nothing, and finishes on the next run (an INVALID build rebuilt)', async () => {
    await beforeIt();
    const old = await shape(t);
    // What a CONCURRENTLY build killed midway leaves behind.
    await t.db.query(`CREATE UNIQUE INDEX task_events_task_id_id_key ON task_events (task_id, id)`);
    await t.db.query(
      `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'task_events_task_id_id_key'::regclass`,
    );
    // A transaction holding a lock on tasks: the swap waits lock_timeout (5 s) for it, then gives up.
    const holder = t.db.createQueryRunner();
    await holder.connect();
    let failed: Error | null = null;
    const t0 = Date.now();
    try {
      await holder.query(`BEGIN`);
      await holder.query(`SELECT id FROM tasks LIMIT 1 FOR UPDATE`);
      await runMigrations(t.db, t.config.DATABASE_SCHEMA).catch((err: Error) => (failed = err));
    } finally {
      await holder.query(`ROLLBACK`);
      await holder.release();
    }
    expect(String(failed)).toMatch(/lock timeout/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const [{ valid }] = await t.db.query(
      `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'task_events_task_id_id_key'::regclass`,
    );
    expect(valid).toBe(true); // rebuilt; only the swap failed
    const unchanged = await shape(t);
    expect({
      ...unchanged,
      indexes: unchanged.indexes.filter((i) => !i.startsWith('task_events_task_id_id_key ')),
    }).toEqual(old);

    expect(await runMigrations(t.db, t.config.DATABASE_SCHEMA)).toEqual(expect.arrayContaining([NAME]));
    const after = await shape(t);
    expect(after.constraints.filter((c) => /^task_events_/.test(c))).toEqual([
      'task_events_pkey PRIMARY KEY (task_id, id)',
    ]);
    expect(after.indexes.filter((i) => /^task_events_/.test(i))).toHaveLength(1);
  }, 30_000);
});
