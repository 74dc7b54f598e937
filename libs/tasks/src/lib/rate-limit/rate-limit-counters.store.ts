import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { pgPool } from '../prepared-query';

/** @internal This replica's change to one bucket of a key (tokens given back, hits admitted without tokens). */
export interface CounterChange {
  key: string;
  /** Start of the bucket, epoch ms. */
  bucket: number;
  delta: number;
  /** The bucket counts at least until then (its latest hit plus the window), epoch ms. */
  expiresAt: number;
}

/** @internal A request for up to `want` tokens of a key, to be recorded in `bucket`. */
export interface TokenRequest {
  key: string;
  want: number;
  limit: number;
  bucket: number;
  expiresAt: number;
}

/** @internal */
export interface TokenGrant {
  key: string;
  granted: number;
  /** The key's count in the window across the deployment after this grant (everyone's unused tokens included). */
  used: number;
  /** When `used` reaches the limit: when enough of it expires for one more hit (epoch ms), else null. */
  retryAt: number | null;
}

/** Class id of the advisory locks (two-key form, a key space apart from `pg_advisory_lock(bigint)`). */
const LOCK_CLASS = 0x524c; // "RL"
/** A sync that waits longer than this for the database gives up and is tried again. */
const STATEMENT_TIMEOUT_MS = 2000;
const LOCK_TIMEOUT_MS = 1000;

// One lock per key, always taken in the same order, so replicas syncing the same keys queue
// instead of deadlocking. Locks are per database: the schema is part of the lock key.
const LOCK_KEYS = `
  SELECT count(pg_advisory_xact_lock(${LOCK_CLASS}, h)) AS locked
    FROM (SELECT DISTINCT hashtext(current_schema() || '/' || k) AS h FROM unnest($1::text[]) AS k ORDER BY 1) AS keys`;

// Runs after LOCK_KEYS in the same transaction, so its snapshot holds every other replica's last
// change to these keys and nobody changes them until COMMIT: the grant is exact. A key's count
// is its unexpired buckets plus this replica's changes; it is granted what it asks for, up to the
// room left under the limit. Changes and grants to one bucket merge into one upserted row.
const SYNC = `
  WITH change AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[]) AS t(key, bucket, delta, expires_at)
  ), ask AS (
    SELECT * FROM unnest($5::text[], $6::int[], $7::int[], $8::bigint[], $9::bigint[]) AS t(key, want, lim, bucket, expires_at)
  ), counted AS (
    SELECT a.*,
           (SELECT coalesce(sum(c.hits), 0) FROM rate_limit_counters c WHERE c.key = a.key AND c.expires_at > $10)
         + (SELECT coalesce(sum(ch.delta), 0) FROM change ch WHERE ch.key = a.key AND ch.expires_at > $10) AS used
      FROM ask a
  ), granted AS (
    SELECT key, bucket, expires_at, lim, used::int AS used, GREATEST(LEAST(want, lim - used), 0)::int AS granted FROM counted
  ), merged AS (
    SELECT coalesce(ch.key, g.key) AS key, coalesce(ch.bucket, g.bucket) AS bucket,
           coalesce(ch.delta, 0) + coalesce(g.granted, 0) AS delta,
           GREATEST(ch.expires_at, g.expires_at) AS expires_at
      FROM change ch FULL JOIN (SELECT * FROM granted WHERE granted > 0) g ON g.key = ch.key AND g.bucket = ch.bucket
  ), applied AS (
    INSERT INTO rate_limit_counters AS c (key, bucket, hits, expires_at)
    SELECT key, bucket, delta, expires_at FROM merged
    ON CONFLICT (key, bucket) DO UPDATE SET hits = c.hits + excluded.hits, expires_at = GREATEST(c.expires_at, excluded.expires_at)
  )
  SELECT g.key, g.granted, g.used + g.granted AS used,
         CASE WHEN g.used + g.granted >= g.lim THEN (
           SELECT min(w.expires_at) FROM (
             SELECT c.expires_at, sum(c.hits) OVER (ORDER BY c.expires_at) AS gone
               FROM rate_limit_counters c WHERE c.key = g.key AND c.expires_at > $10) w
            WHERE g.used + g.granted - w.gone < g.lim)
         END AS retry_at
    FROM granted g`;

const DELETE_EXPIRED = `
  DELETE FROM rate_limit_counters WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM rate_limit_counters WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`;

/**
 * @internal The SQL of the shared rate-limit counters (table `rate_limit_counters`, migration
 * 1763900000000). One transaction per sync, whatever the number of keys and requests.
 */
@Injectable()
export class RateLimitCountersStore {
  constructor(private readonly db: DataSource) {}

  /** Applies `changes` and grants `requests` in one transaction, under a lock per key. */
  async sync(changes: CounterChange[], requests: TokenRequest[], now: number): Promise<TokenGrant[]> {
    const keys = [...new Set([...changes.map((c) => c.key), ...requests.map((r) => r.key)])];
    if (keys.length === 0) return [];
    const client: PoolClient = await pgPool(this.db).connect();
    let failed = false;
    // A checked-out client has no error listener of the pool's: a connection dropped during the sync
    // (PostgreSQL restarting) would otherwise crash the api with an unhandled 'error' event.
    const onError = () => (failed = true);
    client.on('error', onError);
    try {
      await client.query(
        `BEGIN; SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}; SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}`,
      );
      await client.query(LOCK_KEYS, [keys]);
      const { rows } = await client.query<{ key: string; granted: number; used: number; retry_at: string | null }>(
        SYNC,
        [
          changes.map((c) => c.key),
          changes.map((c) => c.bucket),
          changes.map((c) => c.delta),
          changes.map((c) => c.expiresAt),
          requests.map((r) => r.key),
          requests.map((r) => r.want),
          requests.map((r) => r.limit),
          requests.map((r) => r.bucket),
          requests.map((r) => r.expiresAt),
          now,
        ],
      );
      await client.query('COMMIT');
      return rows.map((r) => ({
        key: r.key,
        granted: r.granted,
        used: r.used,
        retryAt: r.retry_at === null ? null : Number(r.retry_at),
      }));
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      client.off('error', onError);
      // A connection left in a failed or unknown transaction state is not handed out again.
      client.release(failed);
    }
  }

  /** Deletes up to `batch` buckets that expired before `before` (epoch ms); returns how many. */
  async deleteExpired(before: number, batch: number): Promise<number> {
    const result = await pgPool(this.db).query(DELETE_EXPIRED, [before, batch]);
    return result.rowCount ?? 0;
  }
}
