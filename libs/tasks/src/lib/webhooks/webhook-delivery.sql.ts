/**
 * @internal The one INSERT of a completion webhook, written by every terminal transition in the same
 * statement (task-state-machine.ts): a delivery row per row of `from` (the transition's RETURNING, alias
 * `upd`) with a callback url. It keeps the task row as the transition left it, so every attempt of the
 * delivery sends the same body even after the task is retried.
 */
export function webhookDeliverySql(from: string): string {
  return `INSERT INTO webhook_deliveries (task_id, owner, url, event_type, task)
          SELECT upd.id, upd.owner, upd.callback_url, 'task.' || upd.status, to_jsonb(upd.*)
            FROM ${from}
           WHERE upd.callback_url IS NOT NULL AND upd.status IN ('succeeded', 'failed', 'cancelled')`;
}
