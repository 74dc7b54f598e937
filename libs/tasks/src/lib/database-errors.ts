/**
 * The one classifier of PostgreSQL errors: is a failed call worth retrying?
 *
 * Transient: the connection or the server is in trouble and the same statement may succeed later
 * (SQLSTATE classes 08 connection except 08P01 (a protocol violation: our bug), 53 insufficient
 * resources, 57P operator intervention such as a restart, 57014 a statement cancelled (a timeout
 * on a busy server), 55P03 a lock not available in time, 40001/40P01 serialization failure and
 * deadlock, 25006 read-only transaction: a replica promoted after a failover, or a primary demoted
 * under us), or the driver lost the socket.
 * Everything else is permanent: a statement the database refuses (syntax, data, constraints) and,
 * above all, a bug in our own code (TypeError and the like), which no retry loop will fix.
 */
const TRANSIENT_SQLSTATE = /^(08(?!P01)|53|57P|57014|55P03|40001|40P01|25006)/;
const SQLSTATE = /^[0-9A-Z]{5}$/;
/** Node socket errors the pg driver passes through. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** pg and pg-pool errors that carry no code. */
const DRIVER_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|Connection ended|the database system is (starting up|shutting down)|terminating connection/i;

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  driverError?: { code?: unknown; message?: unknown };
}

export function isTransientDatabaseError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  // TypeORM wraps the driver's error as `driverError`.
  for (const e of [(err as ErrorLike).driverError, err as ErrorLike]) {
    if (!e) continue;
    const code = typeof e.code === 'string' ? e.code : '';
    // Socket codes first: EPIPE has the shape of a SQLSTATE.
    if (NETWORK_CODES.has(code)) return true;
    if (SQLSTATE.test(code)) return TRANSIENT_SQLSTATE.test(code);
    if (typeof e.message === 'string' && DRIVER_MESSAGES.test(e.message)) return true;
  }
  return false;
}
