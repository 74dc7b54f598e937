import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import type { SqlQueryPayload, TaskContext } from '@tasksys/tasks';
import { testDatabaseUrl, waitFor } from '@tasksys/testing';
import { SqlQueryHandler, type SqlQueryResult } from './sql-query.handler';

/**
 * `sql.query` against a real PostgreSQL: a scratch database of its own (dropped at the end) as the
 * target, the handler built directly, real AbortControllers. The escapes run as a superuser, the
 * worst case, so what stops them is the handler and not the role; the least-privilege part runs the
 * README's role recipe verbatim and shows what only the role can forbid.
 */
const SERVER_URL = testDatabaseUrl('postgres');
const MiB = 1024 * 1024;

function urlFor(database: string, user = 'postgres', port?: number): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${database}`;
  url.username = user;
  if (port) url.port = String(port);
  return url.toString();
}

/** Samples this process's RSS every few ms while `work` runs; growth is the peak minus the start. */
async function rssGrowthDuring<T>(
  work: () => Promise<T>,
): Promise<{ outcome: PromiseSettledResult<T>; growthBytes: number; ms: number }> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 2);
  const began = Date.now();
  try {
    const [outcome] = await Promise.allSettled([work()]);
    peak = Math.max(peak, process.memoryUsage.rss());
    return { outcome, growthBytes: peak - start, ms: Date.now() - began };
  } finally {
    clearInterval(sampler);
  }
}

describe('sql.query handler against a real PostgreSQL', () => {
  const suffix = randomBytes(5).toString('hex');
  const database = `sqlq_${suffix}`;
  const reader = `sqlq_reader_${suffix}`;
  let server: Client; // superuser, on the server's maintenance database
  let admin: Client; // superuser, in the scratch target
  let handler: SqlQueryHandler;

  const config = (overrides: Record<string, unknown> = {}) =>
    ({
      SQL_TARGET_URL: urlFor(database),
      DEMO_ALLOW_CRASH: false,
      SQL_MAX_RESULT_BYTES: 16 * MiB,
      ...overrides,
    }) as never;

  function context(
    payload: SqlQueryPayload,
    signal = new AbortController().signal,
    taskId = randomUUID(),
  ): TaskContext<SqlQueryPayload> {
    return { taskId, type: 'sql.query', payload, attempt: 1, signal, progress: async () => true };
  }

  const run = (sql: string, extra: Partial<SqlQueryPayload> = {}, h = handler) => h.run(context({ sql, ...extra }));

  /** What an escape could change: rows, objects, the sequence, large objects, settings stored per role or database. */
  async function targetState() {
    const { rows } = await admin.query(`
      SELECT (SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) AS relations,
             (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace) AS schemas,
             (SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace) AS functions,
             (SELECT count(*)::int FROM pg_largeobject_metadata) AS large_objects,
             (SELECT count(*)::int FROM pg_db_role_setting) AS stored_settings`);
    const table = await admin
      .query(`SELECT string_agg(id || '=' || v, ',' ORDER BY id) AS t FROM public.t`)
      .catch(() => ({ rows: [{ t: 'gone' }] }));
    const sequence = await admin
      .query(`SELECT last_value || '/' || is_called AS s FROM public.s`)
      .catch(() => ({ rows: [{ s: 'gone' }] }));
    return { ...rows[0], t: table.rows[0].t, s: sequence.rows[0].s };
  }

  /** The target's objects, (re)created from scratch so one escape that got through cannot hide the next. */
  async function createFixtures() {
    await admin.query(`
      DROP TABLE IF EXISTS public.t, public.escaped;
      DROP SEQUENCE IF EXISTS public.s;
      CREATE TABLE public.t (id int PRIMARY KEY, v text NOT NULL);
      INSERT INTO public.t VALUES (1, 'a'), (2, 'b'), (3, 'c');
      CREATE SEQUENCE public.s;
      CREATE OR REPLACE FUNCTION public.w() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.t VALUES (100, 'w'); RETURN 1; END $$;
      CREATE OR REPLACE PROCEDURE public.p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.t VALUES (101, 'p'); END $$;
      DO $$ BEGIN PERFORM lo_unlink(oid) FROM pg_largeobject_metadata; END $$;`);
  }

  beforeAll(async () => {
    server = new Client({ connectionString: SERVER_URL });
    await server.connect();
    await server.query(`CREATE DATABASE ${database}`);
    admin = new Client({ connectionString: urlFor(database) });
    await admin.connect();
    await createFixtures();
    await admin.query(`
      CREATE SCHEMA reporting;
      CREATE TABLE reporting.daily (day date PRIMARY KEY, orders int NOT NULL);
      INSERT INTO reporting.daily VALUES ('2024-01-01', 5), ('2024-01-02', 7);`);
    handler = new SqlQueryHandler(config());
  }, 30_000);

  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    if (server) {
      await server.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await server.query(`DROP ROLE IF EXISTS ${reader}`);
      await server.end();
    }
  }, 30_000);

  describe('returns what the query selects', () => {
    it('columns, rows and rowCount without params', async () => {
      await expect(run('SELECT id, v FROM public.t ORDER BY id')).resolves.toEqual({
        columns: ['id', 'v'],
        rows: [
          [1, 'a'],
          [2, 'b'],
          [3, 'c'],
        ],
        rowCount: 3,
        truncated: false,
      } satisfies SqlQueryResult);
    });

    it('with params, typed by the server', async () => {
      await expect(
        run('SELECT id FROM public.t WHERE v = $1 OR id = $2 ORDER BY id', { params: ['a', 3] }),
      ).resolves.toMatchObject({
        columns: ['id'],
        rows: [[1], [3]],
        truncated: false,
      });
    });

    it('marks a result cut at maxRows as truncated, and an exact fit as not', async () => {
      await expect(run('SELECT generate_series(1, 10) AS n', { maxRows: 3 })).resolves.toEqual({
        columns: ['n'],
        rows: [[1], [2], [3]],
        rowCount: 3,
        truncated: true,
      });
      await expect(run('SELECT generate_series(1, 10) AS n', { maxRows: 10 })).resolves.toMatchObject({
        rowCount: 10,
        truncated: false,
      });
    });

    it('keeps every row across fetch chunks, in order', async () => {
      const result = await run('SELECT generate_series(1, 2500) AS n', { maxRows: 2600 });
      expect(result.rowCount).toBe(2500);
      expect(result.truncated).toBe(false);
      expect(result.rows.map((r) => r[0])).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    });

    it('warns once per worker that a superuser target cannot be contained', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const fresh = new SqlQueryHandler(config());
        await run('SELECT 1', {}, fresh);
        await run('SELECT 1', {}, fresh);
        expect(
          warn.mock.calls.filter(([message]) => /logs in as the superuser "postgres"/.test(String(message))),
        ).toHaveLength(1);
      } finally {
        warn.mockRestore();
      }
    });

    it('an empty result still names its columns; a trailing semicolon is fine', async () => {
      await expect(run('SELECT id, v FROM public.t WHERE false;')).resolves.toEqual({
        columns: ['id', 'v'],
        rows: [],
        rowCount: 0,
        truncated: false,
      });
    });
  });

  describe('cannot be escaped, even as a superuser', () => {
    const MULTIPLE = /cannot insert multiple commands into a prepared statement/;
    const NOT_A_QUERY = /syntax error/;
    const READ_ONLY = /in a read-only transaction/;
    const copyProgram = () =>
      `COPY (SELECT 1) TO PROGRAM 'psql -X -h 127.0.0.1 -U postgres -d ${database} -c "INSERT INTO public.t VALUES (42, ''copy'')"'`;

    const refused: { shape: string; sql: () => string; by: RegExp }[] = [
      { shape: 'two statements', sql: () => 'SELECT 1; SELECT 2', by: MULTIPLE },
      { shape: 'commit, then DDL', sql: () => 'SELECT 1; COMMIT; CREATE TABLE public.escaped (a int)', by: MULTIPLE },
      { shape: 'end, then drop', sql: () => 'SELECT 1; END; DROP TABLE public.t', by: MULTIPLE },
      { shape: 'end; drop as the whole text', sql: () => 'END; DROP TABLE public.t', by: NOT_A_QUERY },
      {
        shape: 'rollback, then insert',
        sql: () => "SELECT 1; ROLLBACK; INSERT INTO public.t VALUES (7, 'r')",
        by: MULTIPLE,
      },
      {
        shape: 'commit, set transaction read write, insert',
        sql: () => "SELECT 1; COMMIT; BEGIN; SET TRANSACTION READ WRITE; INSERT INTO public.t VALUES (8, 'rw'); COMMIT",
        by: MULTIPLE,
      },
      {
        shape: 'a second statement behind a comment',
        sql: () => 'SELECT 1 /* ; */; DELETE FROM public.t',
        by: MULTIPLE,
      },
      { shape: 'commit, then COPY TO PROGRAM', sql: () => `SELECT 1; COMMIT; ${copyProgram()}`, by: MULTIPLE },
      { shape: 'SET TRANSACTION READ WRITE alone', sql: () => 'SET TRANSACTION READ WRITE', by: NOT_A_QUERY },
      { shape: 'COPY TO PROGRAM alone', sql: copyProgram, by: NOT_A_QUERY },
      { shape: 'CREATE TEMP TABLE', sql: () => 'CREATE TEMP TABLE tmp AS SELECT 1 AS a', by: NOT_A_QUERY },
      { shape: 'DO block', sql: () => "DO $$ BEGIN INSERT INTO public.t VALUES (10, 'do'); END $$", by: NOT_A_QUERY },
      { shape: 'CALL of a procedure that inserts', sql: () => 'CALL public.p()', by: NOT_A_QUERY },
      {
        shape: 'EXPLAIN ANALYZE of a write',
        sql: () => "EXPLAIN ANALYZE INSERT INTO public.t VALUES (11, 'x')",
        by: NOT_A_QUERY,
      },
      {
        shape: 'INSERT ... RETURNING',
        sql: () => "INSERT INTO public.t VALUES (12, 'x') RETURNING id",
        by: NOT_A_QUERY,
      },
      {
        shape: 'set_config(transaction_read_only) then a write, in one statement',
        sql: () => "SELECT set_config('transaction_read_only', 'off', false), public.w()",
        by: /transaction read-write mode must be set before any query/,
      },
      {
        shape: 'set_config(default_transaction_read_only) then a write, in one statement',
        sql: () => "SELECT set_config('default_transaction_read_only', 'off', false), public.w()",
        by: READ_ONLY,
      },
      {
        shape: 'CTE with INSERT',
        sql: () => "WITH x AS (INSERT INTO public.t VALUES (13, 'cte') RETURNING id) SELECT * FROM x",
        by: /data-modifying/,
      },
      {
        shape: 'CTE with UPDATE',
        sql: () => "WITH x AS (UPDATE public.t SET v = 'u' RETURNING id) SELECT * FROM x",
        by: /data-modifying/,
      },
      {
        shape: 'CTE with DELETE',
        sql: () => 'WITH x AS (DELETE FROM public.t RETURNING id) SELECT * FROM x',
        by: /data-modifying/,
      },
      { shape: 'nextval', sql: () => "SELECT nextval('public.s')", by: READ_ONLY },
      { shape: 'setval', sql: () => "SELECT setval('public.s', 1000)", by: READ_ONLY },
      { shape: 'a volatile function that inserts', sql: () => 'SELECT public.w()', by: READ_ONLY },
      { shape: 'SELECT FOR UPDATE', sql: () => 'SELECT * FROM public.t FOR UPDATE', by: READ_ONLY },
      {
        shape: 'query_to_xml running a write',
        sql: () => "SELECT query_to_xml('INSERT INTO public.t VALUES (14, ''x'') RETURNING id', true, false, '')",
        by: /not allowed in a non-volatile function/,
      },
      {
        shape: 'query_to_xml running COPY TO PROGRAM',
        sql: () => `SELECT query_to_xml('${copyProgram().replaceAll("'", "''")}', true, false, '')`,
        by: /not allowed in a non-volatile function/,
      },
    ];

    let pristine: Awaited<ReturnType<typeof targetState>>;
    beforeAll(async () => void (pristine = await targetState()));
    afterEach(async () => {
      if (JSON.stringify(await targetState()) !== JSON.stringify(pristine)) await createFixtures();
    });

    it.each(refused)('$shape: refused ($by), the target unchanged', async ({ sql, by }) => {
      const before = await targetState();
      const outcome = await run(sql()).then(
        (result) => ({ result }),
        (err: Error & { code?: string; retryable?: boolean }) => ({
          code: err.code,
          message: err.message,
          retryable: err.retryable,
        }),
      );
      // One assertion, so a failure shows both what the handler said and what changed.
      expect({ outcome, target: await targetState() }).toEqual({
        outcome: { code: 'SQL.ERROR', message: expect.stringMatching(by), retryable: false },
        target: before,
      });
    });

    it('lo_create inside the statement is rolled back with the transaction', async () => {
      const before = await targetState();
      await expect(run('SELECT lo_create(0) > 0 AS created')).resolves.toMatchObject({ rows: [[true]] });
      expect(await targetState()).toEqual(before);
    });

    it('set_config(default_transaction_read_only, off) lasts only for its own task: the next task still cannot write', async () => {
      const before = await targetState();
      await expect(
        run("SELECT set_config('default_transaction_read_only', 'off', false) AS now"),
      ).resolves.toMatchObject({ rows: [['off']] });
      await expect(run('SELECT public.w()')).rejects.toMatchObject({
        code: 'SQL.ERROR',
        message: expect.stringMatching(READ_ONLY),
      });
      expect(await targetState()).toEqual(before);
    });

    it('a session advisory lock does not outlive its task', async () => {
      const key = Number.parseInt(suffix.slice(0, 6), 16);
      await expect(run(`SELECT pg_advisory_lock(${key}) IS NOT NULL AS locked`)).resolves.toMatchObject({
        rows: [[true]],
      });
      const probe = new Client({ connectionString: urlFor(database) });
      await probe.connect();
      try {
        await waitFor(
          'the advisory lock released',
          async () => (await probe.query('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0].ok,
          5000,
        );
        await probe.query('SELECT pg_advisory_unlock($1)', [key]);
      } finally {
        await probe.end();
      }
    });

    it('pg_notify is never delivered (the transaction is rolled back)', async () => {
      const channel = `sqlq_${suffix}`;
      const listener = new Client({ connectionString: urlFor(database) });
      await listener.connect();
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      try {
        await listener.query(`LISTEN ${channel}`);
        await run(`SELECT pg_notify('${channel}', 'from-the-task')`);
        // Notifications arrive in commit order: once the barrier is heard, the task's would have been too.
        await admin.query(`SELECT pg_notify('${channel}', 'barrier')`);
        await waitFor('the barrier notification', async () => heard.includes('barrier'), 5000);
        expect(heard).toEqual(['barrier']);
      } finally {
        await listener.end();
      }
    });
  });

  describe('limits', () => {
    it('the statement timeout applies without params', async () => {
      const started = Date.now();
      await expect(run('SELECT pg_sleep(10)', { timeoutMs: 300 })).rejects.toMatchObject({
        code: 'SQL.TIMEOUT',
        message: expect.stringMatching(/statement timeout/),
        retryable: false,
      });
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('a statement that turns statement_timeout off for the next fetch still ends at its timeoutMs', async () => {
      const taskId = randomUUID();
      const sql = `SELECT n, CASE WHEN n = 1 THEN set_config('statement_timeout', '0', false) END AS off,
                          CASE WHEN n = 9000 THEN pg_sleep(60) END AS slow
                     FROM generate_series(1, 9000) AS n`;
      const started = Date.now();
      await expect(
        handler.run(context({ sql, timeoutMs: 500, maxRows: 10_000 }, undefined, taskId)),
      ).rejects.toMatchObject({ code: 'SQL.TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(4000);
      await waitFor('the backend query gone', async () => (await backendsOf(taskId)) === 0, 5000);
    });

    it('timeoutMs bounds the whole run, not each fetch', async () => {
      // Every FETCH of 1,000 rows takes about 1.1 s (pg_sleep waits at least 1 ms), under the 2 s
      // statement_timeout; ten of them would take 11 s.
      const started = Date.now();
      const sql = 'SELECT n, pg_sleep(0.0005) FROM generate_series(1, 10000) AS n';
      await expect(run(sql, { timeoutMs: 2000, maxRows: 10_000 })).rejects.toMatchObject({
        code: 'SQL.TIMEOUT',
        message: expect.stringMatching(/ran past its timeoutMs \(2000 ms\)/),
      });
      expect(Date.now() - started).toBeLessThan(5000);
    }, 20_000);

    it(`fails a huge result with SQL.RESULT_TOO_LARGE and keeps this process's memory bounded`, async () => {
      const taskId = randomUUID();
      const { outcome, growthBytes, ms } = await rssGrowthDuring(() =>
        handler.run(context({ sql: "SELECT repeat('x', 200000000) FROM generate_series(1, 20)" }, undefined, taskId)),
      );
      console.log(`huge result: failed after ${ms} ms, RSS grew by ${(growthBytes / MiB).toFixed(1)} MiB (cap 16 MiB)`);
      expect(outcome.status).toBe('rejected');
      const err = (outcome as PromiseRejectedResult).reason;
      expect(err).toMatchObject({ code: 'SQL.RESULT_TOO_LARGE', retryable: false });
      expect(err.message).toMatch(/16777216 bytes/);
      expect(err.message).toMatch(/SQL_MAX_RESULT_BYTES/);
      expect(growthBytes).toBeLessThan(64 * MiB); // one row alone is 200 MB
      await waitFor('the backend query gone', async () => (await backendsOf(taskId)) === 0, 5000);
    }, 60_000);

    it('counts the bytes of many small rows together', async () => {
      const small = new SqlQueryHandler(config({ SQL_MAX_RESULT_BYTES: MiB }));
      const sql = "SELECT repeat('x', 1000) FROM generate_series(1, 5000)"; // ~5 MB in 5,000 rows
      await expect(run(sql, { maxRows: 10_000 }, small)).rejects.toMatchObject({
        code: 'SQL.RESULT_TOO_LARGE',
        message: expect.stringMatching(/1048576 bytes/),
      });
      await expect(run(sql, { maxRows: 10_000 })).resolves.toMatchObject({ rowCount: 5000, truncated: false });
    });

    it('bounds a single huge error message the same way, and stores long messages cut short', async () => {
      await expect(run("SELECT repeat('x', 20000000)::int")).rejects.toMatchObject({ code: 'SQL.RESULT_TOO_LARGE' });
      const err = await run("SELECT repeat('y', 100000)::int").catch((e: Error & { code: string }) => e);
      expect(err).toMatchObject({
        code: 'SQL.ERROR',
        message: expect.stringMatching(/invalid input syntax for type integer/),
      });
      expect((err as Error).message.length).toBeLessThan(2100);
    });
  });

  async function backendsOf(taskId: string): Promise<number> {
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
      `tasksys:${taskId}`,
    ]);
    return rows[0].n;
  }

  describe('cancel and unreachable targets', () => {
    it('an abort stops the query in PostgreSQL, promptly', async () => {
      const taskId = randomUUID();
      const controller = new AbortController();
      const running = handler.run(context({ sql: 'SELECT pg_sleep(60)' }, controller.signal, taskId));
      await waitFor('the query running', async () => (await backendsOf(taskId)) === 1, 5000);
      const started = Date.now();
      controller.abort(new Error('cancelled by the test'));
      await expect(running).rejects.toThrow('cancelled by the test');
      await waitFor('the backend gone', async () => (await backendsOf(taskId)) === 0, 2000);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    /** A TCP server that accepts and never says a word, like a black-holed target. */
    async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[]; closed: () => number }> {
      const sockets: Socket[] = [];
      let closedCount = 0;
      const srv = createServer((s) => {
        sockets.push(s);
        s.on('close', () => closedCount++);
        s.on('error', () => undefined);
        s.resume(); // reads (and ignores) the startup packet, so it sees the client's FIN
      });
      await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
      return { server: srv, port: (srv.address() as { port: number }).port, sockets, closed: () => closedCount };
    }

    it('an abort during connect ends the run at once and closes the socket', async () => {
      const silent = await silentServer();
      try {
        const h = new SqlQueryHandler(config({ SQL_TARGET_URL: urlFor(database, 'postgres', silent.port) }));
        const controller = new AbortController();
        const running = h.run(context({ sql: 'SELECT 1' }, controller.signal));
        running.catch(() => undefined);
        await waitFor('the connection accepted', async () => silent.sockets.length === 1, 5000);
        const started = Date.now();
        controller.abort(new Error('cancelled while connecting'));
        await expect(running).rejects.toThrow('cancelled while connecting');
        expect(Date.now() - started).toBeLessThan(500);
        await waitFor('the socket closed', async () => silent.closed() === 1, 2000);
      } finally {
        silent.server.close();
      }
    });

    it('a target that accepts and never answers fails the run as unreachable (retryable) after the connect timeout', async () => {
      const silent = await silentServer();
      try {
        const h = new SqlQueryHandler(config({ SQL_TARGET_URL: urlFor(database, 'postgres', silent.port) }));
        const started = Date.now();
        await expect(h.run(context({ sql: 'SELECT 1' }))).rejects.toMatchObject({
          code: 'SQL.UNREACHABLE',
          retryable: true,
        });
        const ms = Date.now() - started;
        console.log(`silent target: unreachable after ${ms} ms`);
        expect(ms).toBeGreaterThanOrEqual(9_000);
        expect(ms).toBeLessThan(13_000);
        await waitFor('the socket closed', async () => silent.closed() === 1, 2000);
      } finally {
        silent.server.close();
      }
    }, 20_000);

    it('refuses to run when the read-only and timeout settings did not reach the session (a proxy dropping `options`)', async () => {
      const proxy = await optionsStrippingProxy(new URL(SERVER_URL));
      try {
        const h = new SqlQueryHandler(config({ SQL_TARGET_URL: urlFor(database, 'postgres', proxy.port) }));
        const before = await targetState();
        await expect(h.run(context({ sql: 'SELECT 1' }))).rejects.toMatchObject({
          code: 'SQL.SESSION_UNSAFE',
          message: expect.stringMatching(/read-only/),
          retryable: false,
        });
        expect(proxy.startups()).toBeGreaterThanOrEqual(1);
        expect(await targetState()).toEqual(before);
      } finally {
        proxy.close();
      }
    });
  });

  describe('as the least-privilege role of the README', () => {
    let readerHandler: SqlQueryHandler;

    /** The first ```sql block under "### sql.query and the SQL target", for this scratch database. */
    function readmeRoleRecipe(): string {
      const readme = readFileSync(join(__dirname, '../../../../README.md'), 'utf8');
      const section = readme.split('### sql.query and the SQL target')[1];
      const sql = section?.match(/```sql\n([\s\S]*?)```/)?.[1];
      if (!sql) throw new Error('README has no ```sql block under "### sql.query and the SQL target"');
      return sql
        .replaceAll('tasksys_sql_reader', reader)
        .replaceAll('appdb', database)
        .replaceAll('app_owner', 'postgres');
    }

    beforeAll(async () => {
      await admin.query('CREATE EXTENSION IF NOT EXISTS dblink');
      await admin.query(readmeRoleRecipe());
      readerHandler = new SqlQueryHandler(config({ SQL_TARGET_URL: urlFor(database, reader) }));
    }, 30_000);

    const runAs = (sql: string, extra: Partial<SqlQueryPayload> = {}) => readerHandler.run(context({ sql, ...extra }));

    it('reads what it was granted, in a session with the limits of the task', async () => {
      await expect(runAs('SELECT day::text, orders FROM reporting.daily ORDER BY day')).resolves.toEqual({
        columns: ['day', 'orders'],
        rows: [
          ['2024-01-01', 5],
          ['2024-01-02', 7],
        ],
        rowCount: 2,
        truncated: false,
      });
      const settings = await runAs(
        `SELECT current_setting('transaction_read_only'), current_setting('statement_timeout'), current_setting('temp_file_limit'), current_user::text`,
        { timeoutMs: 1500 },
      );
      expect(settings.rows).toEqual([['on', '1500ms', '1GB', reader]]);
    });

    it.each([
      { shape: 'a table it was not granted', sql: 'SELECT * FROM public.t', by: /permission denied for table t/ },
      {
        shape: 'a WAL message (non-transactional)',
        sql: "SELECT pg_logical_emit_message(false, 'x', 'y')",
        by: /permission denied for function/,
      },
      {
        shape: 'dblink to a second session',
        sql: `SELECT dblink_exec('dbname=${database}', 'INSERT INTO public.t VALUES (50, ''d'')')`,
        by: /permission denied for function/,
      },
      { shape: 'a server file', sql: "SELECT pg_read_file('/etc/hostname')", by: /permission denied for function/ },
      {
        shape: 'reloading the server configuration',
        sql: 'SELECT pg_reload_conf()',
        by: /permission denied for function/,
      },
    ])('$shape: refused by the role', async ({ sql, by }) => {
      const before = await targetState();
      await expect(runAs(sql)).rejects.toMatchObject({ code: 'SQL.ERROR', message: expect.stringMatching(by) });
      expect(await targetState()).toEqual(before);
    });

    it("cannot terminate another owner's running task, and cancel still works without pg_cancel_backend", async () => {
      const victimId = randomUUID();
      const controller = new AbortController();
      const victim = readerHandler.run(context({ sql: 'SELECT pg_sleep(60)' }, controller.signal, victimId));
      victim.catch(() => undefined);
      await waitFor('the victim running', async () => (await backendsOf(victimId)) === 1, 5000);
      const attack = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tasksys:${victimId}'`;
      await expect(runAs(attack)).rejects.toMatchObject({
        message: expect.stringMatching(/permission denied for function pg_terminate_backend/),
      });
      await expect(runAs(attack.replace('pg_terminate_backend', 'pg_cancel_backend'))).rejects.toMatchObject({
        message: expect.stringMatching(/permission denied for function pg_cancel_backend/),
      });
      expect(await backendsOf(victimId)).toBe(1);
      controller.abort(new Error('cancelled by its owner'));
      await expect(victim).rejects.toThrow('cancelled by its owner');
      await waitFor('the victim backend gone', async () => (await backendsOf(victimId)) === 0, 2000);
    });

    it("cancels at the role's CONNECTION LIMIT (the cancel request needs no login)", async () => {
      await admin.query(`ALTER ROLE ${reader} CONNECTION LIMIT 1`);
      try {
        const taskId = randomUUID();
        const controller = new AbortController();
        const running = readerHandler.run(context({ sql: 'SELECT pg_sleep(60)' }, controller.signal, taskId));
        running.catch(() => undefined);
        await waitFor('the query running', async () => (await backendsOf(taskId)) === 1, 5000);
        await expect(runAs('SELECT 1')).rejects.toMatchObject({
          code: 'SQL.UNREACHABLE',
          message: expect.stringMatching(/too many connections/),
        });
        controller.abort(new Error('cancelled at the limit'));
        await expect(running).rejects.toThrow('cancelled at the limit');
        await waitFor('the backend gone', async () => (await backendsOf(taskId)) === 0, 2000);
      } finally {
        await admin.query(`ALTER ROLE ${reader} CONNECTION LIMIT 20`);
      }
    });

    it('refuses to run with unlimited temp files, naming the fix', async () => {
      await admin.query(`ALTER ROLE ${reader} RESET temp_file_limit`);
      try {
        await expect(runAs('SELECT 1')).rejects.toMatchObject({
          code: 'SQL.SESSION_UNSAFE',
          message: expect.stringMatching(/temp_file_limit/),
        });
      } finally {
        await admin.query(`ALTER ROLE ${reader} SET temp_file_limit = '1GB'`);
      }
      await expect(runAs('SELECT 1 AS one')).resolves.toMatchObject({ rows: [[1]] });
    });
  });
});

/**
 * A TCP proxy to PostgreSQL that drops the `options` startup parameter, as a pooler configured to
 * ignore it would (PgBouncer's `ignore_startup_parameters = options`).
 */
async function optionsStrippingProxy(
  upstream: URL,
): Promise<{ port: number; startups: () => number; close: () => void }> {
  let startups = 0;
  const sockets: Socket[] = [];
  const srv = createServer((client) => {
    sockets.push(client);
    let pending = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 4 || pending.length < pending.readInt32BE(0)) return;
      client.off('data', onData);
      client.pause();
      const length = pending.readInt32BE(0);
      const fields = pending
        .subarray(8, length - 1)
        .toString('utf8')
        .split('\0');
      const kept: string[] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] !== 'options') kept.push(fields[i], fields[i + 1]);
      const body = Buffer.from(kept.map((f) => `${f}\0`).join('') + '\0', 'utf8');
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + body.length, 0);
      pending.copy(head, 4, 4, 8);
      startups++;
      const server = createConnection(Number(upstream.port || 5432), upstream.hostname);
      sockets.push(server);
      server.on('error', () => client.destroy());
      client.on('error', () => server.destroy());
      server.write(Buffer.concat([head, body, pending.subarray(length)]));
      client.pipe(server);
      server.pipe(client);
      client.resume();
    };
    client.on('data', onData);
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  return {
    port: (srv.address() as { port: number }).port,
    startups: () => startups,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}
