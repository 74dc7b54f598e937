import type { TestDatabase } from './test-database';

/** Writes `n` work rows to the outbox in one statement (one NOTIFY) and returns their message ids. */
export async function writeOutboxRows(t: TestDatabase, n: number): Promise<string[]> {
  const rows: Array<{ message_id: string }> = await t.db.query(
    `INSERT INTO outbox (exchange, routing_key, correlation_id, body, headers)
     SELECT 'work', 'demo.relay', id::text, jsonb_build_object('v', 1, 'taskId', id::text, 'type', 'demo.relay'), '{"x-task-attempt": 1}'
       FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) ids
     RETURNING message_id`,
    [n],
  );
  return rows.map((r) => r.message_id);
}

/**
 * SQL of the tasks the outbox's work rows carry, one row per task (`outbox_id`, `task_id` text): a
 * bundle's row counts once for each of its tasks (TASK_BUNDLE_SIZE).
 */
export const OUTBOX_WORK_TASKS = `(SELECT o.id AS outbox_id, c.task_id FROM outbox o
  CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN o.body ? 'taskIds' THEN o.body -> 'taskIds' ELSE jsonb_build_array(o.body -> 'taskId') END) AS c(task_id)
  WHERE o.exchange = 'work')`;
