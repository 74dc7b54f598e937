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
}
