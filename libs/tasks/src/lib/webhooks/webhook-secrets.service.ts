import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** How long the previous secret keeps signing after a rotation (Standard Webhooks / Svix: a day). */
export const PREVIOUS_SECRET_VALID_MS = 86_400_000;

export interface RotatedSecret {
  /** `whsec_` + base64 of 32 random bytes; returned once. */
  secret: string;
  /** Until when the previous one (if any) is still used; null when there was none. */
  previousExpiresAt: Date | null;
}

/**
 * Each owner's webhook signing secrets. A rotation makes a new current secret and keeps the previous
 * current one for PREVIOUS_SECRET_VALID_MS (anything older stops at once): meanwhile each delivery is
 * signed under both, so a receiver can switch to the new secret at any time within the window.
 * Secrets are stored as issued, since signing needs them (like Svix; the database is the trust root).
 */
@Injectable()
export class WebhookSecrets {
  constructor(private readonly db: DataSource) {}

  async rotate(owner: string): Promise<RotatedSecret> {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    // One transaction: retire the current (kept for the window) and older ones (at once), insert the new one.
    // Two rotations racing: the unique partial index lets one insert win; the other retries.
    for (let tries = 0; ; tries++) {
      try {
        return await this.db.transaction(async (m) => {
          const [row] = await m.query(
            `WITH older AS (
               UPDATE webhook_secrets SET expires_at = now() WHERE owner = $1 AND expires_at > now()),
             retired AS (
               UPDATE webhook_secrets SET expires_at = now() + $2 * interval '1 millisecond'
                WHERE owner = $1 AND expires_at IS NULL RETURNING expires_at)
             SELECT (SELECT expires_at FROM retired) AS previous_expires_at`,
            [owner, PREVIOUS_SECRET_VALID_MS],
          );
          await m.query(`INSERT INTO webhook_secrets (owner, secret) VALUES ($1, $2)`, [owner, secret]);
          return { secret, previousExpiresAt: row.previous_expires_at ? new Date(row.previous_expires_at) : null };
        });
      } catch (err) {
        if ((err as { code?: string }).code !== '23505' || tries >= 3) throw err;
      }
    }
  }

  /** The secrets a delivery for `owner` is signed with now: the current first, then the previous within its window. */
  async signingSecrets(owner: string): Promise<string[]> {
    const rows: { secret: string }[] = await this.db.query(
      `SELECT secret FROM webhook_secrets WHERE owner = $1 AND (expires_at IS NULL OR expires_at > now())
        ORDER BY expires_at IS NOT NULL, id DESC LIMIT 2`,
      [owner],
    );
    return rows.map((r) => r.secret);
  }

  async hasSecret(owner: string): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM webhook_secrets WHERE owner = $1 AND expires_at IS NULL`, [owner]);
    return rows.length > 0;
  }
}
