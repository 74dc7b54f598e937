/**
 * @internal The progress statement's event row (`upd` is the progress UPDATE's RETURNING): numbered from
 * the task_events sequence (migration 1764500000001) under the task's row lock, so status and progress
 * events of one task share one order.
 */
export const PROGRESS_EVENT_SQL = `INSERT INTO task_progress (task_id, attempt, percent, message)
  SELECT id, attempt, progress_percent, progress_message FROM upd`;
