import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { keysetPage, type Page } from '../queries/keyset-cursor';
import { ScheduleNameTakenError } from './schedule.errors';

export type ScheduleOverlap = 'allow' | 'skip';

/** What every fire of a schedule creates: a submit's fields, its defaults resolved when the schedule was written. */
export interface ScheduledTaskSpec {
  type: string;
  payload: unknown;
  priority: number;
  maxAttempts: number;
  timeoutMs: number;
}

export interface Schedule {
  id: string;
  owner: string;
  name: string;
  cron: string;
  timezone: string;
  task: ScheduledTaskSpec;
  overlap: ScheduleOverlap;
  paused: boolean;
  /** The next fire time (kept while paused; recomputed from now on resume). */
  nextRunAt: Date;
  /** The latest fire time that created a task, and that task. */
  lastFiredAt: Date | null;
  lastTaskId: string | null;
  firedCount: number;
  /** Fires skipped by `overlap: skip` (the previous task still not finished), and the latest of them. */
  skippedCount: number;
  lastSkippedAt: Date | null;
  /** Fire times passed over by the missed-fire policy (everything was down): not fired at all. */
  missedCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewSchedule {
  owner: string;
  name: string;
  cron: string;
  timezone: string;
  task: ScheduledTaskSpec;
  overlap: ScheduleOverlap;
  nextRunAt: Date;
}

/** What a PATCH changes; `nextRunAt` when the cron, the zone or the pause changed. */
export interface SchedulePatch {
  paused?: boolean;
  cron?: string;
  timezone?: string;
  overlap?: ScheduleOverlap;
  task?: ScheduledTaskSpec;
  nextRunAt?: Date;
}

/** @internal The mapping of a `schedules` row. */
export function toSchedule(r: Record<string, any>): Schedule {
  return {
    id: r['id'],
    owner: r['owner'],
    name: r['name'],
    cron: r['cron'],
    timezone: r['timezone'],
    task: {
      type: r['task_type'],
      payload: r['task_payload'],
      priority: r['task_priority'],
      maxAttempts: r['task_max_attempts'],
      timeoutMs: r['task_timeout_ms'],
    },
    overlap: r['overlap'],
    paused: r['paused'],
    nextRunAt: r['next_run_at'],
    lastFiredAt: r['last_fired_at'],
    lastTaskId: r['last_task_id'],
    firedCount: Number(r['fired_count']),
    skippedCount: Number(r['skipped_count']),
    lastSkippedAt: r['last_skipped_at'],
    missedCount: Number(r['missed_count']),
    createdAt: r['created_at'],
    updatedAt: r['updated_at'],
  };
}

const UNIQUE_VIOLATION = '23505';

/**
 * The schedules table, owner-scoped like tasks: `owner` null means every owner (admins). The firer
 * (ScheduleFirer) writes fires; this writes what users ask. Validation is the caller's (CronExpression).
 */
@Injectable()
export class ScheduleStore {
  constructor(private readonly db: DataSource) {}

  async create(s: NewSchedule): Promise<Schedule> {
    try {
      const [row] = await this.db.query(
        `INSERT INTO schedules (owner, name, cron, timezone, task_type, task_payload, task_priority, task_max_attempts,
                                task_timeout_ms, overlap, next_run_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
        [
          s.owner,
          s.name,
          s.cron,
          s.timezone,
          s.task.type,
          JSON.stringify(s.task.payload ?? null),
          s.task.priority,
          s.task.maxAttempts,
          s.task.timeoutMs,
          s.overlap,
          s.nextRunAt,
        ],
      );
      return toSchedule(row);
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new ScheduleNameTakenError(s.name);
      throw err;
    }
  }

  async find(id: string, owner: string | null): Promise<Schedule | null> {
    const rows = await this.db.query(
      owner === null ? `SELECT * FROM schedules WHERE id = $1` : `SELECT * FROM schedules WHERE id = $1 AND owner = $2`,
      owner === null ? [id] : [id, owner],
    );
    return rows.length === 1 ? toSchedule(rows[0]) : null;
  }

  /** Newest first, keyset-paginated on (created_at, id) like the task list. */
  async list(q: { owner: string | null; limit: number; cursor?: string }): Promise<Page<Schedule>> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.owner !== null) {
      params.push(q.owner);
      where.push(`owner = $${params.length}`);
    }
    return keysetPage(this.db, { table: 'schedules', where, params, limit: q.limit, cursor: q.cursor }, toSchedule);
  }

  /**
   * Changes a schedule under its row lock: `change` gets the schedule as it is and the database's clock and
   * returns the patch (it may throw to refuse). Null when there is no such schedule visible to `owner`. The
   * lock waits for a firer holding the schedule, so a new cron applies from the fire after the one in
   * flight, and two PATCHes never compute a next fire time from each other's half.
   */
  async modify(
    id: string,
    owner: string | null,
    change: (current: Schedule, now: Date) => SchedulePatch,
  ): Promise<Schedule | null> {
    return this.db.transaction(async (manager) => {
      const current: Record<string, any>[] = await manager.query(
        `SELECT *, now() AS db_now FROM schedules WHERE id = $1${owner === null ? '' : ' AND owner = $2'} FOR UPDATE`,
        owner === null ? [id] : [id, owner],
      );
      if (current.length === 0) return null;
      const patch = change(toSchedule(current[0]), current[0]['db_now']);
      const sets: string[] = [];
      const params: unknown[] = [id];
      const set = (column: string, value: unknown) => {
        params.push(value);
        sets.push(`${column} = $${params.length}`);
      };
      if (patch.paused !== undefined) set('paused', patch.paused);
      if (patch.cron !== undefined) set('cron', patch.cron);
      if (patch.timezone !== undefined) set('timezone', patch.timezone);
      if (patch.overlap !== undefined) set('overlap', patch.overlap);
      if (patch.nextRunAt !== undefined) set('next_run_at', patch.nextRunAt);
      if (patch.task !== undefined) {
        set('task_type', patch.task.type);
        set('task_payload', JSON.stringify(patch.task.payload ?? null));
        set('task_priority', patch.task.priority);
        set('task_max_attempts', patch.task.maxAttempts);
        set('task_timeout_ms', patch.task.timeoutMs);
      }
      const [rows] = await manager.query(
        `UPDATE schedules SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING *`,
        params,
      );
      return toSchedule(rows[0]);
    });
  }

  /** Stops its future fires; the tasks it created stay (and keep their scheduleId). False: none visible. */
  async delete(id: string, owner: string | null): Promise<boolean> {
    const rows = await this.db.query(
      owner === null
        ? `DELETE FROM schedules WHERE id = $1 RETURNING id`
        : `DELETE FROM schedules WHERE id = $1 AND owner = $2 RETURNING id`,
      owner === null ? [id] : [id, owner],
    );
    const deleted = Array.isArray(rows[0]) ? rows[0] : rows;
    return deleted.length > 0;
  }
}
