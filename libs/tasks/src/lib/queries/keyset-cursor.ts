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
