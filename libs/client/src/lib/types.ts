import type { components, paths } from '../generated/openapi';

type Schemas = components['schemas'];

/** A task as the api shows it. */
export type Task = Schemas['TaskView'];
export type TaskStatus = Task['status'];
/** The submit body: one variant per task type, its payload typed by the type's schema. */
export type CreateTaskRequest = Schemas['CreateTaskRequest'];
export type TaskType = CreateTaskRequest['type'];
/** The payload of one task type, e.g. `TaskPayload<'demo.sleep'>`. */
export type TaskPayload<T extends TaskType> = Extract<CreateTaskRequest, { type: T }>['payload'];
/** What `submit(type, payload, options)` takes besides the type and payload. */
export type SubmitOptions = Omit<CreateTaskRequest, 'type' | 'payload'> & {
  /** Sent as the Idempotency-Key header: a retry with the same key and body returns the same task. */
  idempotencyKey?: string;
};
export type TaskEvent = Schemas['TaskEventItemView'];
export type TaskPage = Schemas['TaskPageView'];
export type ListTasksQuery = NonNullable<paths['/v1/tasks']['get']['parameters']['query']>;
export type ApiKey = Schemas['ApiKeyView'];
export type Report = Schemas['ReportView'];
export type ReportPage = Schemas['ReportPageView'];
export type Queue = Schemas['QueueView'];
export type QueueList = Schemas['QueueListView'];
export type BrokerMessage = Schemas['BrokerMessageView'];
export type BrokerMessageList = Schemas['BrokerMessageListView'];
export type RedriveDeadLettersRequest = Schemas['RedriveDeadLettersRequestDto'];
export type DeadLetterRedrive = Schemas['DeadLetterRedriveView'];
export type RedriveRequest = Schemas['RedriveRequestDto'];
export type UnroutedRedrive = Schemas['UnroutedRedriveView'];
export type Worker = Schemas['WorkerView'];
export type WorkerFleet = Schemas['WorkerFleetView'];
export type ReconcileRequest = Schemas['ReconcileRequestDto'];
export type Reconcile = Schemas['ReconcileView'];
export type Schedule = Schemas['ScheduleView'];
export type SchedulePage = Schemas['SchedulePageView'];

/** Statuses a task never leaves on its own. */
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export const isTerminal = (status: TaskStatus): boolean => TERMINAL_STATUSES.includes(status);

/** `progress` events of the task stream. */
export interface TaskProgress {
  id: string;
  percent: number;
  message: string | null;
}

/** What `stream(id)` yields: the whole task on each status change, and progress reports between. */
export type TaskStreamEvent =
  | { event: 'status'; id?: string; task: Task }
  | { event: 'progress'; id?: string; progress: TaskProgress };
