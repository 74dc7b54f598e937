import { ERROR_CODES } from '@tasksys/platform';

/**
 * The wire contract between the api (through the outbox) and the workers, in one place: the body
 * types, how they are built (in TypeScript and, for the outbox, in SQL) and how they are parsed.
 * Bump the version when a body changes shape; workers dead-letter versions they do not know.
 */
export const TASK_MESSAGE_SCHEMA_VERSION = 1;

/** Body of a message on the work exchange (routing key = task type). */
export interface TaskMessage {
  v: typeof TASK_MESSAGE_SCHEMA_VERSION;
  taskId: string;
  type: string;
}

/** Body of a message on the control exchange. */
export interface ControlMessage {
  v: typeof TASK_MESSAGE_SCHEMA_VERSION;
  kind: 'cancel';
  taskId: string;
  /**
   * The attempt (fencing token) the signal cancels: a late signal must not abort a newer run of the
   * same task (cancel, retry, then the old signal arrives). Absent in signals of older versions.
   */
  attempt?: number;
}

/** Why a body is not a task message: the code its dead letter carries. */
export type MalformedMessageCode =
  | typeof ERROR_CODES.MESSAGE_NOT_JSON
  | typeof ERROR_CODES.MESSAGE_INVALID
  | typeof ERROR_CODES.MESSAGE_UNKNOWN_VERSION;

export type ParsedTaskMessage =
  | { ok: true; message: TaskMessage }
  | { ok: false; code: MalformedMessageCode; reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A task id as text (any case): the one check of the id's shape, for messages, headers and cursors. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** @internal The work message of a task (ids lowercase, as PostgreSQL returns them). */
export function taskMessage(taskId: string, type: string): TaskMessage {
  return { v: TASK_MESSAGE_SCHEMA_VERSION, taskId: taskId.toLowerCase(), type };
}

/**
 * The work message as a SQL expression, for outbox rows written in the same statement as a state
 * change: `row` is the alias of a relation with the task's `id` and `type`.
 */
export function taskMessageSql(row: string): string {
  return `jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'taskId', ${row}.id, 'type', ${row}.type)`;
}

/** The cancel signal as a SQL expression: `idExpr` the task id, `attemptExpr` the attempt it cancels. */
export function cancelMessageSql(idExpr: string, attemptExpr: string): string {
  return `jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'kind', 'cancel', 'taskId', ${idExpr}, 'attempt', ${attemptExpr})`;
}

/** Reads a work message body; anything else comes with a reason (a code) to dead-letter it. Ids come back lowercase. */
export function parseTaskMessage(content: Buffer): ParsedTaskMessage {
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, code: ERROR_CODES.MESSAGE_NOT_JSON, reason: 'body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'body is not a JSON object' };
  }
  const { v, taskId, type } = body as Record<string, unknown>;
  if (v !== TASK_MESSAGE_SCHEMA_VERSION) {
    return {
      ok: false,
      code: ERROR_CODES.MESSAGE_UNKNOWN_VERSION,
      reason: `schema version ${JSON.stringify(v)} is not ${TASK_MESSAGE_SCHEMA_VERSION}`,
    };
  }
  if (typeof taskId !== 'string' || !UUID.test(taskId))
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'taskId is not a uuid' };
  if (typeof type !== 'string' || type.length === 0)
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'type is missing' };
  // PostgreSQL returns ids in lowercase; results are matched by id.
  return { ok: true, message: taskMessage(taskId, type) };
}

/** @internal Reads a control message body; null when it is not one. */
export function parseControlMessage(content: Buffer): ControlMessage | null {
  try {
    const value: unknown = JSON.parse(content.toString('utf8'));
    if (typeof value !== 'object' || value === null) return null;
    const v = value as Record<string, unknown>;
    if (
      v['kind'] !== 'cancel' ||
      typeof v['taskId'] !== 'string' ||
      !UUID.test(v['taskId']) ||
      typeof v['v'] !== 'number'
    )
      return null;
    const attempt = v['attempt'];
    if (attempt !== undefined && !(Number.isInteger(attempt) && (attempt as number) >= 0)) return null;
    return {
      v: TASK_MESSAGE_SCHEMA_VERSION,
      kind: 'cancel',
      taskId: v['taskId'].toLowerCase(),
      ...(attempt === undefined ? {} : { attempt: attempt as number }),
    };
  } catch {
    return null;
  }
}
