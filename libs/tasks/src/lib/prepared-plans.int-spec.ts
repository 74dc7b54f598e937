import { createTestDatabase, type TestDatabase } from '../testing';
import { pgPool } from './prepared-query';
import { newTaskId } from './task-id';
import { TaskStateMachine } from './task-state-machine';
import { WEBHOOK_CLAIM_SQL } from './webhooks/webhook-dispatcher.service';

/** A statement as preparedQuery sent it: its name, text and the values of one call. */
interface Sent {
  name: string;
  text: string;
  values: unknown[];
}

/** Tables that grow with use: a statement looking rows up in them by key must never scan them whole. */
const TABLES = ['tasks', 'task_events', 'outbox', 'webhook_deliveries', 'webhook_attempts'];

/** `v` as a SQL literal for EXECUTE (arrays in PostgreSQL's text form, objects as JSON). */
function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Array.isArray(v)) return literal(`{${v.map((x) => `"${String(x).replace(/(["\\])/g, '\\$1')}"`).join(',')}}`);
  const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return `'${text.replace(/'/g, "''")}'`;
}

/** A node of `EXPLAIN (FORMAT JSON)`. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

/**
 * The scans of `plan` that read a growing table whole: a Seq Scan, or an index scan with no
 * condition on the index (a full index walk, as a merge join may choose).
 */
function wholeTableReads(plan: PlanNode): string[] {
  const found: string[] = [];
  const visit = (n: PlanNode) => {
    const table = n['Relation Name'];
    if (table && TABLES.includes(table)) {
      const type = n['Node Type'];
      if (type === 'Seq Scan') found.push(`Seq Scan on ${table}`);
      if ((type === 'Index Scan' || type === 'Index Only Scan') && !n['Index Cond'])
        found.push(`${type} using ${n['Index Name']} on ${table} with no index condition`);
      if (type === 'Bitmap Heap Scan' && !n['Recheck Cond'])
        found.push(`Bitmap Heap Scan on ${table} with no condition`);
    }
    n.Plans?.forEach(visit);
  };
  visit(plan);
  return found;
}

/**
 * The state machine's prepared statements under a generic plan (plan_cache_mode auto reuses one
 * after five executions) built while the tables were empty and never analyzed: the worst moment,
 * since a cached plan is kept until something invalidates it (an ANALYZE, a DDL, a new connection).
 * None may read a table that grows with use (TABLES) whole, by a Seq Scan or an index walked with
 * no condition, or a claim on a grown table would read every task. Statements that cannot meet
 * this (periodic ones: promotion, the sweeps, a webhook's record) are planned per call instead.
 */
describe('prepared statements: generic plans made on empty tables (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  const sent: Sent[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    // Nothing may analyze the tables behind the test's back.
    for (const table of TABLES) await t.db.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    const pool = pgPool(t.db);
    const query = pool.query.bind(pool) as (...a: unknown[]) => unknown;
    (pool as unknown as { query: (...a: unknown[]) => unknown }).query = (q: unknown, ...rest: unknown[]) => {
      const named = q as Partial<Sent>;
      if (named?.name && named.text && !sent.some((s) => s.name === named.name))
        sent.push({ name: named.name, text: named.text, values: named.values ?? [] });
      return query(q, ...rest);
    };
    sm = new TaskStateMachine(t.db, null, { TASK_BUNDLE_SIZE: 100 });
  }, 30_000);
  afterAll(() => t?.drop());

  const newRow = (start = true) => ({
    id: newTaskId(),
    owner: 'alice',
    type: 'demo.sleep',
    payload: { ms: 1 },
    maxAttempts: 3,
    timeoutMs: 60_000,
    start,
    actor: 'owner:alice',
  });

  it('scan no table of tasks, events, outbox rows or webhook deliveries in full', async () => {
    // Every hot path once, so each statement is prepared (and its values recorded).
    const [a, b, c, d] = [newRow(), newRow(), newRow(), newRow()];
    const [e, f] = [newRow(false), newRow()];
    await sm.createMany([a, b, c, d, e, f]);
    await sm.start(e.id, 'owner:alice');
    await sm.create(
      { owner: 'alice', type: 'demo.sleep', payload: {}, maxAttempts: 3, timeoutMs: 60_000, priority: 0 },
      { start: true, actor: 'owner:alice' },
    );
    await sm.claimMany([a.id, b.id, c.id, d.id], 'w1', 30_000);
    await sm.heartbeatMany([{ id: a.id, token: 1 }], 'w1', 30_000);
    await sm.progress(a.id, 1, 'w1', 50, 'half', 30_000);
    await sm.succeedMany([{ id: a.id, token: 1, result: null }], 'w1');
    await sm.failRetryable(b.id, 1, { code: 'TEST.X', message: 'x' }, 1000, 'w1');
    await sm.failFinal(c.id, 1, { code: 'TEST.X', message: 'x' }, 'w1');
    await sm.release(d.id, 1, 'w1');
    await sm.cancel(d.id, 'owner:alice');
    await sm.claimMany([f.id], 'w1', 30_000);
    await sm.failAbandoned(f.id, { code: 'TEST.GONE', message: 'lease lost' }, 'sweeper');
    await sm.retry(c.id, 'admin:ops');
    await sm.enqueueAgain([c.id], ['queued']);
    await sm.promoteDue(['demo.sleep'], 100, 'promoter');
    await sm.nextDueInMs(['demo.sleep']);
    await sm.requeueStranded(1000, 100, ['demo.sleep']);
    await sm.requeueLostQueued(await sm.findIdleQueued(['demo.sleep'], 0, 100), 0);
    await sm.wakeHeld('alice');
    await sm.wakeStrandedHeld(10);
    expect(sent.length).toBeGreaterThan(10);
    // The webhook dispatcher's claim, with values of a call.
    sent.push({ name: 'webhook claim', text: WEBHOOK_CLAIM_SQL, values: [50, 35_000] });

    const client = await pgPool(t.db).connect();
    const scans: string[] = [];
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      for (const [i, s] of sent.entries()) {
        await client.query(`PREPARE generic_${i} AS ${s.text}`);
        const [{ 'QUERY PLAN': plan }] = (
          await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
            `EXPLAIN (FORMAT JSON) EXECUTE generic_${i}(${s.values.map(literal).join(', ')})`,
          )
        ).rows;
        for (const node of wholeTableReads(plan[0].Plan))
          scans.push(`${s.name} (${s.text.trim().slice(0, 60).replace(/\s+/g, ' ')}…): ${node}`);
      }
    } finally {
      // Its prepared statements (the test's and preparedQuery's) go with it.
      client.release(true);
    }
    expect(scans).toEqual([]);
  });
});
