/**
 * The wire contract between the api (through the outbox) and the workers.
 * Bump the version when the body changes shape; workers dead-letter versions they do not know.
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
