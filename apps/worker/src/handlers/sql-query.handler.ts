import { Inject, Injectable, Logger } from '@nestjs/common';
import { DatabaseError, type QueryConfig } from 'pg';
import {
  HandlesTask,
  RetryableError,
  type SqlQueryPayload,
  type TaskContext,
  TaskFailure,
  type TaskHandler,
  UnrecoverableError,
} from '@tasksys/tasks';
import type { SqlQueryConfig } from '../worker.config';
import { TASK_TYPES_CONFIG } from '../worker.constants';
import { HANDLER_ERROR_CODES } from './handler-error-codes';
import {
  CLIENT_TIMEOUT_MARGIN_MS,
  IDLE_IN_TRANSACTION_TIMEOUT_MS,
  type ResultOverflow,
  TargetSession,
} from './sql-target.session';

export interface SqlQueryResult {
  columns: string[];
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
}

const DEFAULT_MAX_ROWS = 1000;
const DEFAULT_TIMEOUT_MS = 60_000;
/** Most rows per FETCH (see nextFetchRows). */
const FETCH_CHUNK_ROWS = 1000;
/** 1 GiB of temp files (sorts and hashes that spill) per session; the README's role recipe uses the same. */
const TEMP_FILE_LIMIT_KB = 1024 * 1024;
/** A stored error message longer than this is cut (PostgreSQL repeats bad input values in full). */
const MAX_ERROR_MESSAGE_CHARS = 2000;

/** Read back after connect: the session must really be what the worker asked for (is_superuser is not in pg_settings). */
const SESSION_CHECK_SQL = `SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY ($1::text[])
  UNION ALL SELECT 'is_superuser', pg_catalog.current_setting('is_superuser')`;
const SESSION_CHECKED = [
  'transaction_read_only',
  'default_transaction_read_only',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
  'temp_file_limit',
];

/**
 * The SQL console of source document 003: one read-only query against SQL_TARGET_URL. Safe by
 * construction, in layers (README, "sql.query and the SQL target"):
 * - the user's text goes in one Parse message of the extended protocol (one statement, whatever
 *   the params), as the query of DECLARE CURSOR (only a SELECT, VALUES, TABLE or WITH...SELECT);
 * - the session is read-only with statement, idle-in-transaction and temp-file limits from its
 *   startup packet, checked after connect; the query runs in a READ ONLY transaction that is
 *   rolled back, on a connection of its own that ends with the task;
 * - rows are capped by count (cursor) and by bytes (metered off the socket before pg buffers them);
 * - timeoutMs is a deadline for the whole run on the worker's side too, and cancel really stops
 *   the backend (the protocol's CancelRequest).
 * What is outside one read-only statement (files, programs, other sessions, signals) is the
 * role's to forbid: SQL_TARGET_URL must name a least-privilege role.
 */
@Injectable()
@HandlesTask('sql.query')
export class SqlQueryHandler implements TaskHandler<SqlQueryPayload, SqlQueryResult> {
  private readonly logger = new Logger(SqlQueryHandler.name);
  /** Cleared the first time the target refuses temp_file_limit at connect (the role is not a superuser). */
  private setsTempFileLimit = true;
  private readonly warned = new Set<string>();

  constructor(@Inject(TASK_TYPES_CONFIG) private readonly config: SqlQueryConfig) {}

  async run({ taskId, payload, signal }: TaskContext<SqlQueryPayload>): Promise<SqlQueryResult> {
    const url = this.config.SQL_TARGET_URL;
    if (!url)
      throw new UnrecoverableError('SQL_TARGET_URL is not set on this worker', HANDLER_ERROR_CODES.SQL_DISABLED);
    if (signal.aborted) throw signal.reason;
    const timeoutMs = payload.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let session: TargetSession | undefined;
    let deadline: NodeJS.Timeout | undefined;
    const onAbort = () => session?.stop('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const opened = await this.open(url, taskId, timeoutMs, signal, (tracked) => (session = tracked));
      // The worker's own deadline over every statement: one of them may have turned
      // statement_timeout off for the next (set_config inside a SELECT).
      deadline = setTimeout(() => opened.stop('deadline'), timeoutMs + CLIENT_TIMEOUT_MARGIN_MS);
      await this.checkSession(opened, timeoutMs);
      return await this.query(opened, payload);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // pg's query_timeout leaves the statement running on the server: stop it there too.
      if (err instanceof Error && err.message === 'Query read timeout') session?.stop('deadline');
      throw this.failure(err, session, timeoutMs);
    } finally {
      clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
      await session?.close();
    }
  }

  /** Connects, once more without temp_file_limit if the role may not set it (see checkSession). */
  private async open(
    url: string,
    taskId: string,
    timeoutMs: number,
    signal: AbortSignal,
    track: (session: TargetSession) => void,
  ): Promise<TargetSession> {
    for (;;) {
      const tempFileLimitKb = this.setsTempFileLimit ? TEMP_FILE_LIMIT_KB : null;
      const session = new TargetSession(url, `tasksys:${taskId}`, {
        statementTimeoutMs: timeoutMs,
        maxResultBytes: this.config.SQL_MAX_RESULT_BYTES,
        tempFileLimitKb,
      });
      track(session);
      if (signal.aborted) session.stop('aborted');
      try {
        await session.connect();
        return session;
      } catch (err) {
        await session.close();
        if (signal.aborted) throw signal.reason;
        if (tempFileLimitKb !== null && refusedTempFileLimit(err)) {
          this.setsTempFileLimit = false;
          this.logger.log(
            'the SQL target role may not set temp_file_limit (not a superuser): the role must carry its own',
          );
          continue;
        }
        const sqlState = err instanceof DatabaseError ? ` (SQLSTATE ${err.code})` : '';
        throw new RetryableError(
          `cannot reach the SQL target: ${(err as Error).message}${sqlState}`,
          HANDLER_ERROR_CODES.SQL_UNREACHABLE,
        );
      }
    }
  }

  /**
   * Refuses a session without the settings asked for at connect: a pooler that drops the startup
   * `options` (PgBouncer's ignore_startup_parameters) would otherwise run the query unbounded.
   */
  private async checkSession(session: TargetSession, timeoutMs: number): Promise<void> {
    const { rows } = await session.client.query<{ name: string; setting: string }>(SESSION_CHECK_SQL, [
      SESSION_CHECKED,
    ]);
    const setting = (name: string) => rows.find((r) => r.name === name)?.setting;
    const role = session.client.user;
    const problems = [
      setting('transaction_read_only') === 'on' && setting('default_transaction_read_only') === 'on'
        ? null
        : 'is not read-only',
      setting('statement_timeout') === String(timeoutMs)
        ? null
        : `has statement_timeout ${setting('statement_timeout')} ms, not ${timeoutMs}`,
      setting('idle_in_transaction_session_timeout') === String(IDLE_IN_TRANSACTION_TIMEOUT_MS)
        ? null
        : `has idle_in_transaction_session_timeout ${setting('idle_in_transaction_session_timeout')} ms`,
      setting('temp_file_limit') !== '-1'
        ? null
        : `has no temp_file_limit (only a superuser may set it at connect: ALTER ROLE ${role} SET temp_file_limit = '1GB')`,
    ].filter((problem) => problem !== null);
    if (problems.length > 0) {
      throw new UnrecoverableError(
        `refusing to run: the session on SQL_TARGET_URL ${problems.join('; ')}. The worker sets these at connect ` +
          '(startup options); a pooler that drops them cannot be used (README, "sql.query and the SQL target")',
        HANDLER_ERROR_CODES.SQL_SESSION_UNSAFE,
      );
    }
    if (setting('is_superuser') === 'on') {
      this.warnOnce(
        `SQL_TARGET_URL logs in as the superuser "${role}": one read-only statement of a superuser can still read and ` +
          'write server files and signal any backend; use a least-privilege role (README, "sql.query and the SQL target")',
      );
    }
  }

  private async query(session: TargetSession, payload: SqlQueryPayload): Promise<SqlQueryResult> {
    const maxRows = payload.maxRows ?? DEFAULT_MAX_ROWS;
    const { client } = session;
    await client.query('BEGIN READ ONLY');
    // One Parse message holds one statement, so `select 1; commit; ...` is refused whatever the
    // params (pg uses the simple protocol, which runs a list, whenever `values` is empty).
    // DECLARE takes only a query: SET, COPY, DO, CALL, DDL and data-modifying WITH are refused.
    const declare: QueryConfig & { queryMode: 'extended' } = {
      text: `DECLARE task_cursor NO SCROLL CURSOR FOR ${payload.sql}`,
      values: payload.params ?? [],
      queryMode: 'extended',
    };
    await client.query(declare);
    const rows: unknown[][] = [];
    let columns: string[] = [];
    session.meter.resetRows();
    for (;;) {
      const wanted = nextFetchRows(session.meter.received, maxRows, this.config.SQL_MAX_RESULT_BYTES);
      const chunk = await client.query<unknown[]>({
        text: `FETCH FORWARD ${wanted} FROM task_cursor`,
        rowMode: 'array',
      });
      columns = chunk.fields.map((f) => f.name);
      for (const row of chunk.rows) rows.push(row);
      if (chunk.rows.length < wanted || rows.length >= maxRows) break;
    }
    // MOVE says whether another row exists without sending it, so the check costs no result bytes.
    const truncated = rows.length >= maxRows && (await client.query('MOVE FORWARD 1 IN task_cursor')).rowCount === 1;
    await client.query('ROLLBACK');
    return { columns, rows, rowCount: rows.length, truncated };
  }

  /** The task's error for a failed run: the worker's own stops first, then what PostgreSQL said. */
  private failure(err: unknown, session: TargetSession | undefined, timeoutMs: number): Error {
    if (session?.overflow) {
      return new UnrecoverableError(
        tooLargeMessage(session.overflow, this.config.SQL_MAX_RESULT_BYTES),
        HANDLER_ERROR_CODES.SQL_RESULT_TOO_LARGE,
      );
    }
    if (session?.stopped === 'deadline') {
      const message = `the query ran past its timeoutMs (${timeoutMs} ms) and was stopped by the worker`;
      return new UnrecoverableError(message, HANDLER_ERROR_CODES.SQL_TIMEOUT);
    }
    if (err instanceof TaskFailure) return err;
    return classify(err);
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.logger.warn(message);
  }
}

/**
 * Rows for the next FETCH. PostgreSQL materializes a FETCH's rows before it sends the first (a
 * utility's result goes through a tuplestore, spilling to temp files), so the chunk is sized from
 * the bytes per row seen so far to what is left of the byte cap, and the first FETCH takes one
 * row to measure. With 1,000-row chunks, 20 rows of 200 MB hit temp_file_limit (1 GB) on the
 * server before the first byte reached the worker's meter.
 */
function nextFetchRows(received: { rows: number; bytes: number }, maxRows: number, maxBytes: number): number {
  const left = maxRows - received.rows;
  if (received.rows === 0) return 1;
  const fit = Math.floor((maxBytes - received.bytes) / (received.bytes / received.rows)) + 1;
  return Math.max(1, Math.min(left, FETCH_CHUNK_ROWS, fit));
}

function tooLargeMessage(overflow: ResultOverflow, maxBytes: number): string {
  const cap = `SQL_MAX_RESULT_BYTES (${maxBytes} bytes, ${(maxBytes / (1024 * 1024)).toFixed(1)} MiB)`;
  const what = overflow.single
    ? `PostgreSQL sent one message (a row or an error) of ${overflow.bytes} bytes, more than ${cap}`
    : `the result passed ${cap} after ${overflow.rows} rows`;
  const fix =
    'select fewer or narrower rows (a lower maxRows, fewer columns, left(value, n)), or raise SQL_MAX_RESULT_BYTES on the workers';
  return `${what}: ${fix}`;
}

/** A role that is not a superuser may not take temp_file_limit from the startup packet (FATAL 42501). */
function refusedTempFileLimit(err: unknown): boolean {
  return err instanceof DatabaseError && err.code === '42501' && /temp_file_limit/.test(err.message);
}

/** Errors in the SQL itself never get better with a retry; a lost connection may. */
function classify(err: unknown): Error {
  if (err instanceof DatabaseError) {
    const sqlState = err.code ?? '';
    // 53400 is a configured limit (temp_file_limit): the same query hits it again.
    const insufficientResources = sqlState.startsWith('53') && sqlState !== '53400';
    const transient =
      sqlState.startsWith('08') || insufficientResources || sqlState.startsWith('57P') || sqlState === '40001';
    const text =
      err.message.length > MAX_ERROR_MESSAGE_CHARS
        ? `${err.message.slice(0, MAX_ERROR_MESSAGE_CHARS)}...`
        : err.message;
    const message = `${text} (SQLSTATE ${sqlState})`;
    if (transient) return new RetryableError(message, HANDLER_ERROR_CODES.SQL_TRANSIENT);
    return new UnrecoverableError(
      message,
      sqlState === '57014' ? HANDLER_ERROR_CODES.SQL_TIMEOUT : HANDLER_ERROR_CODES.SQL_ERROR,
    );
  }
  return new RetryableError((err as Error).message ?? String(err), HANDLER_ERROR_CODES.SQL_CONNECTION);
}
