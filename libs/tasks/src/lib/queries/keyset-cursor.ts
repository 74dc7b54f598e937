import type { DataSource } from 'typeorm';
import { isUuid } from '@tasksys/messaging';
import { AppError, ERROR_CODES } from '@tasksys/platform';

/** @internal Position after the last row of a page ordered by (created_at DESC, id DESC). */
export interface KeysetPosition {
  /** created_at in UTC with microseconds (`2025-01-01T10:00:00.123456Z`), exactly as PostgreSQL stores it. */
  at: string;
  id: string;
}

/** A cursor that is not one this api handed out. */
export class InvalidCursorError extends AppError {
  readonly code = ERROR_CODES.REQUEST_INVALID;

  constructor() {
    super('cursor: cursor is not a cursor returned by this api', { field: 'cursor' });
  }
}

const AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** @internal SQL expression producing `KeysetPosition.at` from a timestamptz column (JS Dates would lose the microseconds). */
export const KEYSET_AT_SQL = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** @internal Opaque to clients: base64url of a small JSON array. */
export function encodeCursor(pos: KeysetPosition): string {
  return Buffer.from(JSON.stringify([pos.at, pos.id]), 'utf8').toString('base64url');
}

/** @internal The position a cursor names; InvalidCursorError when it is not one `encodeCursor` made. */
export function decodeCursor(cursor: string): KeysetPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new InvalidCursorError();
  const [at, id] = parsed as unknown[];
  if (typeof at !== 'string' || !AT.test(at) || typeof id !== 'string' || !isUuid(id)) throw new InvalidCursorError();
  return { at, id };
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/**
 * @internal One page, newest first, of `table` filtered by `where` (SQL over `params`' $n), keyset-paginated
 * on (created_at, id): the one query behind every list (tasks, schedules). Reads limit + 1 rows to know
 * whether a next page exists.
 */
export async function keysetPage<T>(
  db: DataSource,
  q: { table: string; where: string[]; params: unknown[]; limit: number; cursor?: string },
  map: (row: Record<string, unknown>) => T,
): Promise<Page<T>> {
  const where = [...q.where];
  const params = [...q.params];
  if (q.cursor) {
    const pos = decodeCursor(q.cursor);
    params.push(pos.at, pos.id);
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(q.limit + 1);
  const rows: Record<string, unknown>[] = await db.query(
    `SELECT *, ${KEYSET_AT_SQL('created_at')} AS keyset_at FROM ${q.table}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const more = rows.length > q.limit;
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(map),
    nextCursor: more && last ? encodeCursor({ at: last['keyset_at'] as string, id: last['id'] as string }) : null,
  };
}
