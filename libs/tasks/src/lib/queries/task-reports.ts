import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { TaskReport } from '../entities';
import { decodeCursor, encodeCursor, KEYSET_AT_SQL, type Page } from './keyset-cursor';

/** Users' problem reports about their tasks ("submit a ticket"), listed for admins newest first. */
@Injectable()
export class TaskReports {
  constructor(private readonly db: DataSource) {}

  async create(taskId: string, owner: string, message: string): Promise<TaskReport> {
    const [row] = await this.db.query(
      `INSERT INTO task_reports (task_id, owner, message) VALUES ($1, $2, $3) RETURNING *`,
      [taskId, owner, message],
    );
    return toReport(row);
  }

  async list(limit: number, cursor?: string): Promise<Page<TaskReport>> {
    const params: unknown[] = [];
    let where = '';
    if (cursor) {
      const pos = decodeCursor(cursor);
      params.push(pos.at, pos.id);
      where = `WHERE (created_at, id) < ($1::timestamptz, $2::uuid)`;
    }
    params.push(limit + 1);
    const rows: Record<string, any>[] = await this.db.query(
      `SELECT *, ${KEYSET_AT_SQL('created_at')} AS keyset_at FROM task_reports ${where}
        ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toReport),
      nextCursor: rows.length > limit && last ? encodeCursor({ at: last['keyset_at'], id: last['id'] }) : null,
    };
  }
}

function toReport(row: Record<string, any>): TaskReport {
  return {
    id: row['id'],
    taskId: row['task_id'],
    owner: row['owner'],
    message: row['message'],
    createdAt: row['created_at'],
  };
}
