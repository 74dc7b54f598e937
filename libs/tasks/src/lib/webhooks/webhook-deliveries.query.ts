import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface WebhookAttemptView {
  attempt: number;
  at: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
}

export interface WebhookDeliveryView {
  /** The `webhook-id` header of every attempt of this delivery. */
  id: string;
  taskId: string;
  url: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: WebhookAttemptView[];
  createdAt: Date;
  /** When the next attempt is due (pending only). */
  nextAttemptAt: Date | null;
  finishedAt: Date | null;
}

export interface FailingEndpoint {
  owner: string;
  url: string;
  /** Deliveries to it whose last attempt failed, still pending or failed for good, in the window. */
  failingDeliveries: number;
  pending: number;
  failed: number;
  lastAttemptAt: Date;
  lastError: string | null;
  lastStatusCode: number | null;
}

/** Reads of webhook deliveries for the api: a task's deliveries with every attempt, and endpoints that fail. */
@Injectable()
export class WebhookDeliveries {
  constructor(private readonly db: DataSource) {}

  async forTask(taskId: string): Promise<WebhookDeliveryView[]> {
    const rows: Record<string, any>[] = await this.db.query(
      `SELECT d.id, d.task_id, d.url, d.event_type, d.status, d.created_at, d.next_attempt_at, d.finished_at,
              coalesce((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'durationMs', a.duration_ms,
                                                            'statusCode', a.status_code, 'error', a.error) ORDER BY a.id)
                          FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempts
         FROM webhook_deliveries d WHERE d.task_id = $1 ORDER BY d.created_at, d.id`,
      [taskId],
    );
    return rows.map((r) => ({
      id: r['id'],
      taskId: r['task_id'],
      url: r['url'],
      eventType: r['event_type'],
      status: r['status'],
      createdAt: r['created_at'],
      nextAttemptAt: r['status'] === 'pending' ? r['next_attempt_at'] : null,
      finishedAt: r['finished_at'],
      attempts: (r['attempts'] as Record<string, any>[]).map(
        (a) => ({ ...a, at: new Date(a['at']) }) as WebhookAttemptView,
      ),
    }));
  }

  /** Endpoints with deliveries whose last attempt failed within `windowMs`, worst first; one owner's, or everyone's (null). */
  async failingEndpoints(owner: string | null, windowMs: number, limit: number): Promise<FailingEndpoint[]> {
    const rows: Record<string, any>[] = await this.db.query(
      `SELECT owner, url, count(*)::int AS failing, count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(*) FILTER (WHERE status = 'failed')::int AS failed, max(last_attempt_at) AS last_attempt_at,
              (array_agg(last_error ORDER BY last_attempt_at DESC))[1] AS last_error,
              (array_agg(last_status_code ORDER BY last_attempt_at DESC))[1] AS last_status_code
         FROM webhook_deliveries
        WHERE last_error IS NOT NULL AND status <> 'succeeded' AND last_attempt_at > now() - $2 * interval '1 millisecond'
          AND ($1::text IS NULL OR owner = $1)
        GROUP BY owner, url ORDER BY count(*) DESC, max(last_attempt_at) DESC LIMIT $3`,
      [owner, windowMs, limit],
    );
    return rows.map((r) => ({
      owner: r['owner'],
      url: r['url'],
      failingDeliveries: r['failing'],
      pending: r['pending'],
      failed: r['failed'],
      lastAttemptAt: r['last_attempt_at'],
      lastError: r['last_error'],
      lastStatusCode: r['last_status_code'],
    }));
  }
}
