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
