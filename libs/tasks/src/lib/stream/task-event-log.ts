import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Task, TaskError } from '../entities';
import { TaskStateMachine } from '../task-state-machine';
import type { TaskStatus } from '../task-status';

/** One event of a task's stream, with its id in the order of all the task's events. */
export type TaskStreamEvent =
  | {
      kind: 'status';
      id: string;
      at: Date;
      from: TaskStatus | null;
      to: TaskStatus;
      attempt: number;
      error: TaskError | null;
    }
  | { kind: 'progress'; id: string; at: Date; attempt: number; percent: number; message: string | null };

/** What one read saw, in ONE statement (one snapshot): the task row and its events after the given id. */
export interface TaskEventSnapshot {
  task: Task | null;
  events: TaskStreamEvent[];
  /** The id of the task's latest event in this snapshot (null: none yet). */
  lastId: string | null;
}

/** A task's latest event id, status or progress ($1 the task): two descents of the (task_id, id) primary keys. */
const LAST_ID_SQL = `greatest((SELECT max(id) FROM task_events WHERE task_id = $1),
                   (SELECT max(id) FROM task_progress WHERE task_id = $1))::text AS last_id`;

/** @internal The task and its latest event id ($1 the task): a stream's first connect. */
export const TASK_STREAM_CURRENT_SQL = `SELECT (SELECT to_jsonb(t) FROM tasks t WHERE t.id = $1) AS task, ${LAST_ID_SQL}`;

/**
 * @internal The task and up to $3 of its events after id $2, oldest first ($1 the task): a resume, and
 * every read after a notification. Ranges of the (task_id, id) primary keys of both tables.
 */
export const TASK_STREAM_AFTER_SQL = `SELECT (SELECT to_jsonb(t) FROM tasks t WHERE t.id = $1) AS task,
  coalesce((SELECT jsonb_agg(e ORDER BY e.id) FROM (
    SELECT id, 'status' AS kind, at, from_status, to_status, attempt, error, NULL::int AS percent, NULL AS message
      FROM task_events WHERE task_id = $1 AND id > $2::bigint
    UNION ALL
    SELECT id, 'progress', at, NULL, NULL, attempt, NULL, percent, message
      FROM task_progress WHERE task_id = $1 AND id > $2::bigint
    ORDER BY id LIMIT $3) e), '[]') AS events,
  ${LAST_ID_SQL}`;

/**
 * Reads of a task's event log for resumable streams: status events (`task_events`) and progress events
 * (`task_progress`) merged by their shared id. The row and the events come from one statement, so the
 * row is exactly the state after the last event returned, never a later one.
 */
@Injectable()
export class TaskEventLog {
  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  /** The task and its latest event id, without the events (a stream's first connect). */
  async current(taskId: string): Promise<TaskEventSnapshot> {
    const [row] = await this.db.query(TASK_STREAM_CURRENT_SQL, [taskId]);
    return { task: row.task ? this.sm.hydrate(row.task) : null, events: [], lastId: row.last_id };
  }

  /** The task and up to `limit` of its events with ids above `afterId`, oldest first. */
  async after(taskId: string, afterId: string, limit = 500): Promise<TaskEventSnapshot> {
    const [row] = await this.db.query(TASK_STREAM_AFTER_SQL, [taskId, afterId, limit]);
    const events = (row.events as Record<string, any>[]).map(
      (e): TaskStreamEvent =>
        e['kind'] === 'status'
          ? {
              kind: 'status',
              id: String(e['id']),
              at: new Date(e['at']),
              from: e['from_status'],
              to: e['to_status'],
              attempt: e['attempt'],
              error: e['error'],
            }
          : {
              kind: 'progress',
              id: String(e['id']),
              at: new Date(e['at']),
              attempt: e['attempt'],
              percent: e['percent'],
              message: e['message'],
            },
    );
    return { task: row.task ? this.sm.hydrate(row.task) : null, events, lastId: row.last_id };
  }
}
