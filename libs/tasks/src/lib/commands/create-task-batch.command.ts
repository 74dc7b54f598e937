import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { TASK_MESSAGE_SCHEMA_VERSION } from '@tasksys/messaging';
import { DataSource } from 'typeorm';
import type { Task } from '../entities';
import { preparedQuery } from '../prepared-query';
import { TaskStateMachine, type NewTask } from '../task-state-machine';

/** A task of a batch; `start` queues it (with its work message) instead of leaving it `new`. */
export type NewBatchTask = Omit<NewTask, 'idempotencyKey' | 'requestHash'> & { start: boolean };

/**
 * Creates many tasks atomically: the tasks, their `created` events and (when started) their
 * work messages in the outbox, in ONE statement, with exactly the rows TaskStateMachine.create
 * writes for a single task. All or nothing; results in input order.
 */
@Injectable()
export class CreateTaskBatchCommand {
  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  async execute(items: NewBatchTask[], opts: { actor: string; traceparent?: string }): Promise<Task[]> {
    if (items.length === 0) return [];
    const input = items.map((t) => ({
      id: randomUUID(),
      owner: t.owner,
      type: t.type,
      payload: t.payload ?? null,
      max_attempts: t.maxAttempts,
      timeout_ms: t.timeoutMs,
      priority: t.priority ?? 0,
      status: t.start ? 'queued' : 'new',
    }));
    const rows = await preparedQuery(
      this.db,
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb)
           AS x(id uuid, owner text, type text, payload jsonb, max_attempts int, timeout_ms int, priority smallint, status text)),
       ins AS (
         INSERT INTO tasks (id, owner, type, payload, status, max_attempts, timeout_ms, priority)
         SELECT id, owner, type, payload, status, max_attempts, timeout_ms, priority FROM input
         RETURNING *),
       ev AS (
         INSERT INTO task_events (task_id, from_status, to_status, attempt, actor)
         SELECT id, NULL, status, 0, $2 FROM ins),
       ob AS (
         INSERT INTO outbox (exchange, routing_key, correlation_id, body, headers)
         SELECT 'work', upd.type, upd.id::text,
                jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'taskId', upd.id, 'type', upd.type),
                jsonb_strip_nulls(jsonb_build_object('traceparent', $3::text))
           FROM ins upd WHERE upd.status = 'queued')
       SELECT * FROM ins`,
      [JSON.stringify(input), opts.actor, opts.traceparent ?? null],
    );
    const byId = new Map(rows.map((r) => [r['id'] as string, r]));
    return input.map((i) => this.sm.hydrate(byId.get(i.id)!));
  }
}
