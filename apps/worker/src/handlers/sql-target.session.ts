import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

/** What the worker imposes on one session on the SQL target. */
export interface TargetSessionLimits {
  /** statement_timeout of every statement (the payload's timeoutMs). */
  statementTimeoutMs: number;
  /** Largest result in bytes as received (DataRow messages together), and largest single message. */
  maxResultBytes: number;
  /** temp_file_limit in kB, or null to leave it to the role: only a superuser may set it at connect. */
  tempFileLimitKb: number | null;
}

/** Why the worker cut a session short from outside its statements. */
export type StopReason = 'aborted' | 'deadline' | 'result-too-large';

/** What the byte meter saw when it cut the connection. */
export interface ResultOverflow {
  /** Bytes of the offending message, or of all rows so far. */
  bytes: number;
  /** Rows received before the cut. */
  rows: number;
  /** One message was bigger than the cap on its own (a huge value, or a huge error text). */
  single: boolean;
}

/**
 * Kills the session if the worker stalls between statements (event loop blocked, process
 * frozen): its snapshot and table locks must not outlive a worker that stopped answering.
 */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;
/** A target that accepts TCP and never answers would otherwise hold the task until its own timeout. */
const CONNECT_TIMEOUT_MS = 10_000;
/** TCP keep-alive probes on a connection that waits for a long statement. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;
/**
 * The client-side limits sit this far above statement_timeout: the server's limit fires first and
 * says which statement; the client's catch a server or network that stopped answering, and a
 * statement that turned statement_timeout off for the ones after it (set_config in a SELECT).
 */
export const CLIENT_TIMEOUT_MARGIN_MS = 1_000;
const CANCEL_TIMEOUT_MS = 2_000;
const CLOSE_GRACE_MS = 1_000;

/** CancelRequest: int32 length 16, int32 80877102, the backend's pid and secret key (protocol docs, 55.2.7). */
const CANCEL_REQUEST_CODE = 80877102;
const DATA_ROW = 0x44; // 'D'
const HEADER_BYTES = 5; // type byte + int32 length

/**
 * Startup parameters that pg takes from the URL over the client's own config (the URL wins in
 * pg's ConnectionParameters), each of which would replace or undo one of the worker's settings.
 */
const WORKER_OWNED_URL_PARAMS = [
  'options',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
  'application_name',
  'fallback_application_name',
  'replication',
  'query_timeout',
];

/**
 * The pg Client config for one session: the limits travel as `-c` settings in the startup packet,
 * so they hold from the first statement, and come after any `options` of the URL (the last
 * setting of a name wins).
 * @internal
 */
export function targetClientConfig(url: string, applicationName: string, limits: TargetSessionLimits): ClientConfig {
  const parsed = new URL(url);
  const operatorOptions = parsed.searchParams.get('options');
  const owned = WORKER_OWNED_URL_PARAMS.filter((name) => parsed.searchParams.has(name));
  for (const name of owned) parsed.searchParams.delete(name);
  const settings: Record<string, string | number> = {
    default_transaction_read_only: 'on',
    statement_timeout: limits.statementTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    ...(limits.tempFileLimitKb === null ? {} : { temp_file_limit: limits.tempFileLimitKb }),
  };
  const options = Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`);
  return {
    connectionString: owned.length > 0 ? parsed.toString() : url,
    application_name: applicationName,
    options: [operatorOptions, ...options].filter(Boolean).join(' '),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: limits.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
  };
}

/**
 * Reads the framing of backend messages (type byte, int32 length) as chunks arrive, before pg's
 * parser sees them, and says when a message or the rows together pass the cap. pg buffers a whole
 * message before parsing it (a 200 MB value is a 200 MB buffer, then a 200 MB string), so the cap
 * must be checked from the header, before the body is on its way into memory.
 * @internal
 */
export class BackendMessageMeter {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private bodyLeft = 0;
  private rowBytes = 0;
  private rows = 0;

  constructor(private readonly maxBytes: number) {}

  /** Rows and their bytes since the last reset. */
  get received(): { rows: number; bytes: number } {
    return { rows: this.rows, bytes: this.rowBytes };
  }

  /** Counts rows from here on (the session's own checks before the user's query do not count). */
  resetRows(): void {
    this.rows = 0;
    this.rowBytes = 0;
  }

  /** The overflow this chunk brings, or null when it may go on to the parser. */
  admit(chunk: Buffer): ResultOverflow | null {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLeft > 0) {
        const skipped = Math.min(this.bodyLeft, chunk.length - offset);
        this.bodyLeft -= skipped;
        offset += skipped;
        continue;
      }
      const copied = Math.min(HEADER_BYTES - this.headerFilled, chunk.length - offset);
      chunk.copy(this.header, this.headerFilled, offset, offset + copied);
      this.headerFilled += copied;
      offset += copied;
      if (this.headerFilled < HEADER_BYTES) break;
      this.headerFilled = 0;
      const length = this.header.readUInt32BE(1); // counts itself, not the type byte
      this.bodyLeft = Math.max(0, length - 4);
      const bytes = length + 1;
      if (bytes > this.maxBytes) return { bytes, rows: this.rows, single: true };
      if (this.header[0] === DATA_ROW) {
        this.rowBytes += bytes;
        if (this.rowBytes > this.maxBytes) return { bytes: this.rowBytes, rows: this.rows, single: false };
        this.rows++;
      }
    }
    return null;
  }
}

/** The parts of pg's Client and Connection this file relies on that @types/pg leaves out. */
interface PgInternals {
  processID: number | null;
  secretKey: number | null;
  connection: { stream: { destroy(): void }; attachListeners?: (stream: EventEmitter) => void };
}

/**
 * One connection to the SQL target for one task: limits set at connect, every incoming byte
 * metered, and a stop that really stops (CancelRequest to the backend, then the socket closed).
 */
export class TargetSession {
  private static readonly logger = new Logger('SqlTargetSession');
  readonly client: Client;
  /** Counts what PostgreSQL sends, as it arrives. */
  readonly meter: BackendMessageMeter;
  private stopReason: StopReason | null = null;
  private overflowSeen: ResultOverflow | null = null;

  constructor(url: string, applicationName: string, limits: TargetSessionLimits) {
    this.client = new Client(targetClientConfig(url, applicationName, limits));
    this.client.on('error', () => undefined); // surfaced through the pending connect or query instead
    this.meter = new BackendMessageMeter(limits.maxResultBytes);
    this.meterIncomingBytes(this.meter);
  }

  get stopped(): StopReason | null {
    return this.stopReason;
  }

  get overflow(): ResultOverflow | null {
    return this.overflowSeen;
  }

  async connect(): Promise<void> {
    if (this.stopReason) throw new Error(`session stopped before connecting (${this.stopReason})`);
    await this.client.connect();
  }

  /**
   * Ends whatever is running now: asks the backend to cancel its statement and closes the socket,
   * which also ends a connect in progress. The pending connect or query rejects at once.
   */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    void this.cancelBackend();
    this.internals().connection.stream.destroy();
  }

  /** A graceful goodbye when the session is healthy; the socket is closed in any case. */
  async close(): Promise<void> {
    if (!this.stopReason) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
      await Promise.race([this.client.end().catch(() => undefined), grace]);
      clearTimeout(timer);
    }
    this.internals().connection.stream.destroy();
  }

  private internals(): PgInternals {
    return this.client as unknown as PgInternals;
  }

  /**
   * Puts the meter between the socket (or the TLS stream over it) and pg's parser: pg attaches its
   * parser through Connection#attachListeners, after any TLS upgrade. pg is pinned; if a new
   * version drops that method, this throws rather than running without the cap.
   */
  private meterIncomingBytes(meter: BackendMessageMeter): void {
    const connection = this.internals().connection;
    const attach = connection.attachListeners;
    if (typeof attach !== 'function')
      throw new Error('pg Connection#attachListeners is gone: the result byte cap cannot be enforced');
    connection.attachListeners = (stream: EventEmitter) => {
      const metered = new EventEmitter();
      let open = true;
      stream.on('data', (chunk: Buffer) => {
        if (!open) return;
        const overflow = meter.admit(chunk);
        if (overflow) {
          open = false;
          this.overflowSeen = overflow;
          this.stop('result-too-large');
          return;
        }
        metered.emit('data', chunk);
      });
      stream.on('end', () => metered.emit('end'));
      attach.call(connection, metered);
    };
  }

  /**
   * The protocol's own cancel, on a connection of its own: no login, no connection slot (it works
   * at the role's CONNECTION LIMIT), no function privilege (pg_cancel_backend may be revoked from
   * the role, so tasks cannot cancel each other), and the secret key makes a reused pid harmless.
   */
  private cancelBackend(): Promise<void> {
    const { processID, secretKey } = this.internals();
    if (!processID || secretKey === null) return Promise.resolve(); // not connected yet: closing the socket is enough
    const { host, port } = this.client;
    return new Promise((resolve) => {
      const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
      const request = Buffer.alloc(16);
      request.writeInt32BE(16, 0);
      request.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      request.writeInt32BE(processID, 8);
      request.writeInt32BE(secretKey, 12);
      socket.setTimeout(CANCEL_TIMEOUT_MS, () => socket.destroy(new Error(`no answer in ${CANCEL_TIMEOUT_MS} ms`)));
      socket.once('connect', () => socket.end(request));
      socket.once('error', (err) =>
        TargetSession.logger.warn(`cancel request for backend ${processID} failed: ${err.message}`),
      );
      socket.once('close', () => resolve());
    });
  }
}
