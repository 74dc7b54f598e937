import { TASK_MESSAGE_SCHEMA_VERSION, type TaskMessage } from '@tasksys/messaging';

export type ParsedTaskMessage = { ok: true; message: TaskMessage } | { ok: false; code: string; reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a work message body; anything else is a reason to dead-letter it. */
export function parseTaskMessage(content: Buffer): ParsedTaskMessage {
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, code: 'MESSAGE.NOT_JSON', reason: 'body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, code: 'MESSAGE.INVALID', reason: 'body is not a JSON object' };
  }
  const { v, taskId, type } = body as Record<string, unknown>;
  if (v !== TASK_MESSAGE_SCHEMA_VERSION) {
    return { ok: false, code: 'MESSAGE.UNKNOWN_VERSION', reason: `schema version ${JSON.stringify(v)} is not ${TASK_MESSAGE_SCHEMA_VERSION}` };
  }
  if (typeof taskId !== 'string' || !UUID.test(taskId)) {
    return { ok: false, code: 'MESSAGE.INVALID', reason: 'taskId is not a uuid' };
  }
  if (typeof type !== 'string' || type.length === 0) {
    return { ok: false, code: 'MESSAGE.INVALID', reason: 'type is missing' };
  }
  // PostgreSQL returns ids in lowercase; results are matched by id.
  return { ok: true, message: { v: TASK_MESSAGE_SCHEMA_VERSION, taskId: taskId.toLowerCase(), type } };
}
