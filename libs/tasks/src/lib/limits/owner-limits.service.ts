import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TaskStateMachine } from '../task-state-machine';

/** An owner's quotas (null: unlimited) and where it stands against them. */
export interface OwnerLimits {
  owner: string;
  maxRunning: number | null;
  maxQueued: number | null;
  /** Its tasks running now (what maxRunning bounds). */
  running: number;
  /** Its non-terminal tasks: new, scheduled, queued, retrying, running (what maxQueued bounds). */
  queued: number;
  /** Its tasks held back by maxRunning, waiting for a slot. */
  held: number;
  /** When an admin last set them; null when it has none. */
  updatedAt: Date | null;
}

/** A change of an owner's quotas: a field left out stays as it is, null removes that limit. */
export interface OwnerLimitsChange {
  maxRunning?: number | null;
  maxQueued?: number | null;
}

/**
 * The admin's side of per-owner quotas (docs/ARCHITECTURE.md, "Owner quotas"): reading them with the
 * owner's counts, and setting them. The claim and the submit enforce them (TaskStateMachine).
 */
@Injectable()
export class OwnerLimitsService {
  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  async get(owner: string): Promise<OwnerLimits> {
    const [row] = await this.db.query(
      `SELECT l.max_running, l.max_queued, l.updated_at,
              (SELECT count(*) FROM tasks WHERE owner = $1 AND status = 'running')::int AS running,
              (SELECT count(*) FROM tasks
                WHERE owner = $1 AND status IN ('new', 'scheduled', 'queued', 'retrying', 'running'))::int AS queued,
              (SELECT count(*) FROM tasks
                WHERE owner = $1 AND held_since IS NOT NULL AND status IN ('queued', 'retrying'))::int AS held
         FROM (SELECT $1::text AS owner) o LEFT JOIN owner_limits l ON l.owner = o.owner`,
      [owner],
    );
    return {
      owner,
      maxRunning: row.max_running ?? null,
      maxQueued: row.max_queued ?? null,
      running: row.running,
      queued: row.queued,
      held: row.held,
      updatedAt: row.updated_at ?? null,
    };
  }

  /**
   * Applies `change`, then, in the same transaction, wakes held tasks up to the room the new limit
   * leaves (all of them, a batch at a time, when maxRunning is gone; the sweeper wakes the rest). A
   * lower maxRunning stops nothing that runs: new claims are held until the owner is below it.
   */
  async set(owner: string, change: OwnerLimitsChange): Promise<{ limits: OwnerLimits; woken: number }> {
    const woken = await this.db.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO owner_limits AS l (owner, max_running, max_queued) VALUES ($1, $2, $3)
         ON CONFLICT (owner) DO UPDATE
           SET max_running = CASE WHEN $4 THEN EXCLUDED.max_running ELSE l.max_running END,
               max_queued = CASE WHEN $5 THEN EXCLUDED.max_queued ELSE l.max_queued END,
               updated_at = now()`,
        [
          owner,
          change.maxRunning ?? null,
          change.maxQueued ?? null,
          change.maxRunning !== undefined,
          change.maxQueued !== undefined,
        ],
      );
      // No limit left: no row, so claims and submits of this owner skip the quota checks altogether.
      await manager.query(`DELETE FROM owner_limits WHERE owner = $1 AND max_running IS NULL AND max_queued IS NULL`, [
        owner,
      ]);
      return this.sm.wakeHeld(owner, manager);
    });
    return { limits: await this.get(owner), woken: woken.length };
  }
}
