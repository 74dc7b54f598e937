/** The admin API as the console uses it (@tasksys/client): every call sends the admin key kept in localStorage. */
import { ApiError, type Schedule, type SchedulePage, TasksysClient, type TaskStatus } from '@tasksys/client';

const KEY_STORAGE = 'tasksys.adminKey';

export type { TaskStatus };
export const STATUSES: TaskStatus[] = [
  'new',
  'scheduled',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
];
export const TERMINAL: TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

/** The api's own types, generated from its OpenAPI document (libs/client). */
export type {
  BrokerMessage,
  BrokerMessageList,
  Queue,
  QueueList,
  Report,
  Schedule,
  SchedulePage,
  Task,
  TaskEvent,
  Worker,
  WorkerFleet,
} from '@tasksys/client';
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Errors of every call: the api's status, code and message. */
export { ApiError as ApiCallError } from '@tasksys/client';

export function storedKey(): string | null {
  return localStorage.getItem(KEY_STORAGE);
}
export function storeKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** Told when the key stops working (401/403), so the app can ask for it again. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

/** The console's client: the stored key is read on every call, and a refused key asks for it again. */
const client = new TasksysClient({
  key: () => storedKey(),
  onUnauthorized: () => onUnauthorized(),
});

/**
 * A call of a route the client has no helper for (yet), with the same errors; `key` overrides the
 * stored one (the login form checks a key before storing it).
 */
export async function call<T>(method: string, path: string, body?: unknown, key = storedKey()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers['authorization'] = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    if ((res.status === 401 || res.status === 403) && key === storedKey()) onUnauthorized();
    throw ApiError.from(res, json);
  }
  return json as T;
}

export const api = {
  tasks: (q: { status?: string; type?: string; owner?: string; scheduleId?: string; limit?: number }) =>
    client.list({
      status: (q.status || undefined) as TaskStatus | undefined,
      type: q.type || undefined,
      owner: q.owner || undefined,
      scheduleId: q.scheduleId || undefined,
      limit: q.limit,
    }),
  task: (id: string) => client.get(id),
  events: async (id: string) => ({ items: await client.events(id) }),
  cancel: (id: string) => client.cancel(id),
  retry: (id: string) => client.retry(id),
  queues: () => client.admin.queues(),
  deadLetters: (limit = 100) => client.admin.deadLetters(limit),
  redriveDeadLetters: (body: { taskIds?: string[]; purgeMalformed?: boolean }) => client.admin.redriveDeadLetters(body),
  unrouted: (limit = 100) => client.admin.unrouted(limit),
  redriveUnrouted: (body: { taskIds?: string[] }) => client.admin.redriveUnrouted(body),
  workers: () => client.admin.workers(),
  reports: (limit = 50) => client.admin.reports({ limit }),
  schedules: (limit = 100) => call<SchedulePage>('GET', `/v1/schedules?limit=${limit}`),
  schedule: (id: string) => call<Schedule>('GET', `/v1/schedules/${id}`),
  setPaused: (id: string, paused: boolean) => call<Schedule>('PATCH', `/v1/schedules/${id}`, { paused }),
  reconcile: () => client.admin.reconcile({}),
};
