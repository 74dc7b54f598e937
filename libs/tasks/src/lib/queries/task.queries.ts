import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Task, TaskError } from '../entities';
import { TaskStateMachine } from '../task-state-machine';
import { ACTIVE_STATUSES, type TaskStatus } from '../task-status';
import { keysetPage, type Page } from './keyset-cursor';

export interface TaskListQuery {
  /** Only this owner's tasks; null for every owner (admins). */
  owner: string | null;
  status?: TaskStatus;
  type?: string;
  /** Only the runs of this cron schedule. */
  scheduleId?: string;
  /** 1..100 */
  limit: number;
  cursor?: string;
}

/** One row of a task's transition log. */
export interface TaskEventView {
  id: string;
  at: Date;
  from: TaskStatus | null;
  to: TaskStatus;
  attempt: number;
  actor: string;
  error: TaskError | null;
}

/** @internal A task's transition log ($1 the task), oldest first, $2 at most: a range of the (task_id, id) primary key. */
export const TASK_TIMELINE_SQL = `SELECT id, at, from_status, to_status, attempt, actor, error FROM task_events
  WHERE task_id = $1 ORDER BY id LIMIT $2`;

/** Read side of the task store: what owners (and admins) may see. Writes go through TaskStateMachine. */
@Injectable()
export class TaskQueries {
  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  /** The task if `owner` may see it (null owner: anyone's), else null: callers answer 404 either way. */
  async findVisible(id: string, owner: string | null): Promise<Task | null> {
    const rows = await this.db.query(
      owner === null ? `SELECT * FROM tasks WHERE id = $1` : `SELECT * FROM tasks WHERE id = $1 AND owner = $2`,
      owner === null ? [id] : [id, owner],
    );
    return rows.length === 1 ? this.sm.hydrate(rows[0]) : null;
  }

  /** Newest first, keyset-paginated on (created_at, id): stable under concurrent inserts, no OFFSET scans. */
  async list(q: TaskListQuery): Promise<Page<Task>> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (q.owner !== null) add((p) => `owner = ${p}`, q.owner);
    if (q.status) add((p) => `status = ${p}`, q.status);
    if (q.type) add((p) => `type = ${p}`, q.type);
    if (q.scheduleId) add((p) => `schedule_id = ${p}::uuid`, q.scheduleId);
    return keysetPage(this.db, { table: 'tasks', where, params, limit: q.limit, cursor: q.cursor }, (r) =>
      this.sm.hydrate(r),
    );
  }

  /** The transition log of one task, oldest first (visibility is the caller's check). */
  async events(taskId: string, limit = 1000): Promise<TaskEventView[]> {
    const rows: Record<string, any>[] = await this.db.query(TASK_TIMELINE_SQL, [taskId, limit]);
    return rows.map((r) => ({
      id: String(r['id']),
      at: r['at'],
      from: r['from_status'],
      to: r['to_status'],
      attempt: r['attempt'],
      actor: r['actor'],
      error: r['error'],
    }));
  }

  /** Live tasks per state in one grouped query over the partial `tasks_active_status` index (states with none are 0). */
  async activeCounts(): Promise<Record<TaskStatus, number>> {
    const rows: { status: TaskStatus; n: number }[] = await this.db.query(
      `SELECT status, count(*)::int AS n FROM tasks WHERE status IN (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')}) GROUP BY status`,
    );
    const counts = Object.fromEntries(ACTIVE_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }
}
