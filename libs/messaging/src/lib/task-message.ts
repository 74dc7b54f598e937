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

/**
 * Schema version of a bundle: one work message carrying several tasks of one type and priority
 * (a batch submit's tasks, a promotion's). Workers run each task on its own (claim, fencing,
 * retries, dead letters per task) and ack the bundle's delivery only when every task in it is
 * settled by the ack rule (docs/ARCHITECTURE.md). Workers older than bundles dead-letter them as
 * an unknown version, so roll workers out before turning bundles on in the writers (TASK_BUNDLE_SIZE).
 */
export const TASK_BUNDLE_SCHEMA_VERSION = 2;
/** Most tasks one bundle may carry (a bundle of more is malformed: dead-lettered). */
export const MAX_BUNDLE_TASKS = 1000;

/** Body of a bundle on the work exchange (routing key = the tasks' type). */
export interface TaskBundle {
  v: typeof TASK_BUNDLE_SCHEMA_VERSION;
  type: string;
  /** Distinct task ids, lowercase; at least two (one task travels as a TaskMessage). */
  taskIds: string[];
}

/** What a work message carries: one task or a bundle of them. */
export type WorkMessage = TaskMessage | TaskBundle;

export type ParsedWorkMessage =
  | { ok: true; message: WorkMessage }
  | { ok: false; code: MalformedMessageCode; reason: string };

/** The task ids of a work message, in its order. */
export function taskIdsOf(message: WorkMessage): string[] {
  return 'taskIds' in message ? message.taskIds : [message.taskId];
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

/** The work message of tasks `ids` (at least one) of `type`: one task's message, or a bundle of several. */
export function workMessageOf(type: string, ids: readonly string[]): WorkMessage {
  return ids.length === 1
    ? taskMessage(ids[0], type)
    : { v: TASK_BUNDLE_SCHEMA_VERSION, type, taskIds: ids.map((id) => id.toLowerCase()) };
}

/**
 * The work message as a SQL expression, for outbox rows written in the same statement as a state
 * change: `row` is the alias of a relation with the task's `id` and `type`.
 */
export function taskMessageSql(row: string): string {
  return `jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'taskId', ${row}.id, 'type', ${row}.type)`;
}

/**
 * A work message as a SQL expression over a relation with the task `type` and `ids` (uuid[], in the
 * order they are to run): a TaskMessage for one id, a TaskBundle for more.
 */
export function workMessageSql(row: string): string {
  return `CASE WHEN cardinality(${row}.ids) = 1
    THEN jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'taskId', ${row}.ids[1], 'type', ${row}.type)
    ELSE jsonb_build_object('v', ${TASK_BUNDLE_SCHEMA_VERSION}, 'type', ${row}.type, 'taskIds', to_jsonb(${row}.ids)) END`;
}

/** The cancel signal as a SQL expression: `idExpr` the task id, `attemptExpr` the attempt it cancels. */
export function cancelMessageSql(idExpr: string, attemptExpr: string): string {
  return `jsonb_build_object('v', ${TASK_MESSAGE_SCHEMA_VERSION}, 'kind', 'cancel', 'taskId', ${idExpr}, 'attempt', ${attemptExpr})`;
}

/** Reads a single-task work message body; a bundle or anything else comes with a reason (a code) to dead-letter it. */
export function parseTaskMessage(content: Buffer): ParsedTaskMessage {
  const parsed = parseWorkMessage(content);
  if (!parsed.ok || !('taskIds' in parsed.message)) return parsed as ParsedTaskMessage;
  return {
    ok: false,
    code: ERROR_CODES.MESSAGE_UNKNOWN_VERSION,
    reason: `schema version ${TASK_BUNDLE_SCHEMA_VERSION} (a bundle) where one task was expected`,
  };
}

/** Reads a work message body (one task or a bundle); anything else comes with a reason (a code) to dead-letter it. Ids come back lowercase. */
export function parseWorkMessage(content: Buffer): ParsedWorkMessage {
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, code: ERROR_CODES.MESSAGE_NOT_JSON, reason: 'body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'body is not a JSON object' };
  }
  const { v, taskId, taskIds, type } = body as Record<string, unknown>;
  if (v !== TASK_MESSAGE_SCHEMA_VERSION && v !== TASK_BUNDLE_SCHEMA_VERSION) {
    return {
      ok: false,
      code: ERROR_CODES.MESSAGE_UNKNOWN_VERSION,
      reason: `schema version ${JSON.stringify(v)} is not ${TASK_MESSAGE_SCHEMA_VERSION} or ${TASK_BUNDLE_SCHEMA_VERSION}`,
    };
  }
  if (typeof type !== 'string' || type.length === 0)
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'type is missing' };
  if (v === TASK_MESSAGE_SCHEMA_VERSION) {
    if (typeof taskId !== 'string' || !UUID.test(taskId))
      return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'taskId is not a uuid' };
    // PostgreSQL returns ids in lowercase; results are matched by id.
    return { ok: true, message: taskMessage(taskId, type) };
  }
  if (!Array.isArray(taskIds) || taskIds.length < 2 || taskIds.length > MAX_BUNDLE_TASKS)
    return {
      ok: false,
      code: ERROR_CODES.MESSAGE_INVALID,
      reason: `taskIds is not a list of 2 to ${MAX_BUNDLE_TASKS} task ids`,
    };
  const ids = new Set<string>();
  for (const id of taskIds) {
    if (typeof id !== 'string' || !UUID.test(id))
      return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'taskIds holds something that is not a uuid' };
    ids.add(id.toLowerCase());
  }
  if (ids.size !== taskIds.length)
    return { ok: false, code: ERROR_CODES.MESSAGE_INVALID, reason: 'taskIds holds the same id twice' };
  return { ok: true, message: { v: TASK_BUNDLE_SCHEMA_VERSION, type, taskIds: [...ids] } };
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
