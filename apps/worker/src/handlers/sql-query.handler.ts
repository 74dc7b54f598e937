import { Inject, Injectable, Logger } from '@nestjs/common';
import { HandlesTask, RetryableError, type SqlQueryPayload, type TaskContext, type TaskHandler, type TaskTypesConfig, UnrecoverableError } from '@tasksys/tasks';
import { Client, DatabaseError } from 'pg';
import { TASK_TYPES_CONFIG } from '../worker.constants';

export interface SqlQueryResult {
  columns: string[];
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
}

const DEFAULT_MAX_ROWS = 1000;
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The SQL console of source document 003: a read-only query against SQL_TARGET_URL, with a
 * statement timeout and a row cap. Cancel really stops the query (`pg_cancel_backend`).
 */
@Injectable()
@HandlesTask('sql.query')
export class SqlQueryHandler implements TaskHandler<SqlQueryPayload, SqlQueryResult> {
  private readonly logger = new Logger(SqlQueryHandler.name);

  constructor(@Inject(TASK_TYPES_CONFIG) private readonly config: TaskTypesConfig) {}

  async run({ taskId, payload, signal }: TaskContext<SqlQueryPayload>): Promise<SqlQueryResult> {
    if (!this.config.SQL_TARGET_URL) throw new UnrecoverableError('SQL_TARGET_URL is not set on this worker', 'SQL.DISABLED');
    const maxRows = payload.maxRows ?? DEFAULT_MAX_ROWS;
    const client = new Client({ connectionString: this.config.SQL_TARGET_URL, application_name: `tasksys:${taskId}` });
    client.on('error', () => undefined); // surfaced through the pending query instead
    try {
      await client.connect();
    } catch (err) {
      throw new RetryableError(`cannot reach the SQL target: ${(err as Error).message}`, 'SQL.UNREACHABLE');
    }
    // The backend pid, for pg_cancel_backend (set by the server at connect; not in @types/pg).
    const pid = (client as unknown as { processID?: number }).processID;
    const cancel = () => void this.cancelBackend(pid);
    signal.addEventListener('abort', cancel, { once: true });
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${Math.floor(payload.timeoutMs ?? DEFAULT_TIMEOUT_MS)}`);
      // A cursor caps the rows fetched without rewriting the user's SQL; DECLARE accepts only queries.
      await client.query({ text: `DECLARE task_cursor NO SCROLL CURSOR FOR ${payload.sql}`, values: payload.params ?? [] });
      const fetched = await client.query({ text: `FETCH ${maxRows + 1} FROM task_cursor`, rowMode: 'array' });
      await client.query('ROLLBACK');
      const truncated = fetched.rows.length > maxRows;
      const rows = truncated ? fetched.rows.slice(0, maxRows) : fetched.rows;
      return { columns: fetched.fields.map((f) => f.name), rows, rowCount: rows.length, truncated };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw classify(err);
    } finally {
      signal.removeEventListener('abort', cancel);
      await client.end().catch(() => undefined);
    }
  }

  /** Asks the server to stop the query, from a second connection. */
  private async cancelBackend(pid: number | undefined): Promise<void> {
    if (!pid || !this.config.SQL_TARGET_URL) return;
    const admin = new Client({ connectionString: this.config.SQL_TARGET_URL });
    try {
      await admin.connect();
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch (err) {
      this.logger.warn(`pg_cancel_backend(${pid}) failed: ${(err as Error).message}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}

/** Errors in the SQL itself never get better with a retry; a lost connection may. */
function classify(err: unknown): Error {
  if (err instanceof DatabaseError) {
    const sqlState = err.code ?? '';
    const transient = sqlState.startsWith('08') || sqlState.startsWith('53') || sqlState.startsWith('57P') || sqlState === '40001';
    const message = `${err.message} (SQLSTATE ${sqlState})`;
    return transient ? new RetryableError(message, 'SQL.TRANSIENT') : new UnrecoverableError(message, sqlState === '57014' ? 'SQL.TIMEOUT' : 'SQL.ERROR');
  }
  return new RetryableError((err as Error).message ?? String(err), 'SQL.CONNECTION');
}
