import { hash as digest, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ApiKeyRole } from '../entities';

/** Who is calling: the owner their tasks belong to, and what they may do. */
export interface Principal {
  /** `env` for the ADMIN_API_KEY, otherwise the api_keys row id. */
  keyId: string;
  owner: string;
  role: ApiKeyRole;
}

export interface IssuedApiKey {
  id: string;
  /** The secret; shown once, only its SHA-256 is stored. */
  key: string;
  owner: string;
  role: ApiKeyRole;
  createdAt: Date;
}

/** @internal Owner names: what appears in `owner` and in actor strings (`owner:<name>`). */
export const OWNER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

/** SHA-256 (hex) of a presented key: what `api_keys.key_hash` holds. */
export function hashApiKey(key: string): string {
  // The one-shot `crypto.hash` (Node 20.12): no Hash object per call, and every request hashes its key.
  return digest('sha256', key, 'hex');
}

/** Bearer keys: issued with 256 random bits, stored as their SHA-256, looked up by hash. */
/** How long a looked-up key is trusted without asking the database again (bounds how late a revocation bites). */
const KEY_CACHE_TTL_MS = 10_000;
const KEY_CACHE_MAX = 10_000;
/** How long a key that authenticated here still counts as known once its cache entry is stale (see `knows`). */
const KEY_KNOWN_TTL_MS = 10 * 60_000;

@Injectable()
export class ApiKeyService {
  /** Every request authenticates: a short-lived cache keeps that off the pool. Misses are not cached. */
  private readonly cache = new Map<string, { principal: Principal; until: number; knownUntil: number }>();

  constructor(private readonly db: DataSource) {}

  async issue(owner: string, role: ApiKeyRole): Promise<IssuedApiKey> {
    if (!OWNER_PATTERN.test(owner)) throw new Error(`invalid owner ${JSON.stringify(owner)}`);
    const key = `tsk_${randomBytes(32).toString('base64url')}`;
    const [row] = await this.db.query(
      `INSERT INTO api_keys (key_hash, owner, role) VALUES ($1, $2, $3) RETURNING id, created_at`,
      [hashApiKey(key), owner, role],
    );
    return { id: row.id, key, owner, role, createdAt: row.created_at };
  }

  /**
   * The principal of a key this process looked up lately (see KEY_CACHE_TTL_MS), without asking the
   * database; else undefined. `hash`: the key's hashApiKey, when the caller has it already.
   */
  cached(key: string, hash = hashApiKey(key)): Principal | undefined {
    const hit = this.cache.get(hash);
    return hit && hit.until > Date.now() ? hit.principal : undefined;
  }

  /** The key authenticated in this process lately (within KEY_KNOWN_TTL_MS): not a guess, though it may be revoked by now. */
  knows(key: string, hash = hashApiKey(key)): boolean {
    const hit = this.cache.get(hash);
    return hit !== undefined && hit.knownUntil > Date.now();
  }

  /** The principal of an unrevoked key, or null. */
  async authenticate(key: string): Promise<Principal | null> {
    const hash = hashApiKey(key);
    const hit = this.cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.principal;
    const rows: { id: string; owner: string; role: ApiKeyRole }[] = await this.db.query(
      `SELECT id, owner, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [hash],
    );
    if (rows.length !== 1) {
      this.cache.delete(hash);
      return null;
    }
    const principal = { keyId: rows[0].id, owner: rows[0].owner, role: rows[0].role };
    if (this.cache.size >= KEY_CACHE_MAX) this.cache.clear();
    const now = Date.now();
    this.cache.set(hash, { principal, until: now + KEY_CACHE_TTL_MS, knownUntil: now + KEY_KNOWN_TTL_MS });
    return principal;
  }
}
