/** The admin API as the console uses it: every call sends the admin key kept in localStorage. */

const KEY_STORAGE = 'tasksys.adminKey';

export type TaskStatus = 'new' | 'scheduled' | 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled';
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

export interface Task {
  id: string;
  type: string;
  status: TaskStatus;
  payload: unknown;
  result: unknown;
  error: { code: string; message: string } | null;
  attempt: number;
  maxAttempts: number;
  progress: { percent: number; message: string | null };
  owner: string;
  createdAt: string;
  updatedAt: string;
  /** When it was asked to start; `scheduled` until then. */
  runAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}
export interface TaskEvent {
  id: string;
  at: string;
  from: TaskStatus | null;
  to: TaskStatus;
  attempt: number;
  actor: string;
  error: { code: string; message: string } | null;
}
export interface Queue {
  name: string;
  role: 'work' | 'retry' | 'dead' | 'unrouted';
  /** Work queues: the task type whose work waits there. */
  type: string | null;
  /** False for the queue of a type no worker has served yet. */
  exists: boolean;
  messages: number;
  ready: number;
  unacked: number | null;
  consumers: number;
  oldestMessageAgeMs: number | null;
}
export interface QueueList {
  source: 'management' | 'amqp';
  at: string;
  items: Queue[];
}
export interface BrokerMessage {
  messageId: string | null;
  taskId: string | null;
  type: string | null;
  routingKey: string;
  reasonCode: string | null;
  reason: string | null;
  deadLetteredAt: string | null;
  malformed: boolean;
  redelivered: boolean;
  body: string;
}
export interface BrokerMessageList {
  queue: string;
  total: number;
  items: BrokerMessage[];
}
export interface Worker {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  inFlight: number;
  startedAt: string;
  lastSeenAt: string;
  stoppedAt: string | null;
  alive: boolean;
}
export interface WorkerFleet {
  expected: number;
  alive: number;
  workers: Worker[];
}
export interface Report {
  id: string;
  taskId: string;
  owner: string;
  message: string;
  createdAt: string;
}
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

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
    const message = (json as { message?: string } | null)?.message ?? `${res.status} ${res.statusText}`;
    if ((res.status === 401 || res.status === 403) && key === storedKey()) onUnauthorized();
    throw new ApiCallError(res.status, message);
  }
  return json as T;
}

export const api = {
  tasks: (q: { status?: string; type?: string; owner?: string; limit?: number }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
    return call<Page<Task>>('GET', `/v1/tasks?${p}`);
  },
  task: (id: string) => call<Task>('GET', `/v1/tasks/${id}`),
  events: (id: string) => call<{ items: TaskEvent[] }>('GET', `/v1/tasks/${id}/events`),
  cancel: (id: string) => call<Task>('POST', `/v1/tasks/${id}/cancel`),
  retry: (id: string) => call<Task>('POST', `/v1/tasks/${id}/retry`),
  queues: () => call<QueueList>('GET', '/v1/admin/queues'),
  deadLetters: (limit = 100) => call<BrokerMessageList>('GET', `/v1/admin/dead-letters?limit=${limit}`),
  redriveDeadLetters: (body: { taskIds?: string[]; purgeMalformed?: boolean }) =>
    call<{ redriven: number; requeued: number; stale: number; skipped: number; missing: number; purged: number }>(
      'POST',
      '/v1/admin/dead-letters/redrive',
      body,
    ),
  unrouted: (limit = 100) => call<BrokerMessageList>('GET', `/v1/admin/unrouted?limit=${limit}`),
  redriveUnrouted: (body: { taskIds?: string[] }) =>
    call<{ redriven: number; skipped: number; error: string | null }>('POST', '/v1/admin/unrouted/redrive', body),
  workers: () => call<WorkerFleet>('GET', '/v1/admin/workers'),
  reports: (limit = 50) => call<Page<Report>>('GET', `/v1/admin/reports?limit=${limit}`),
  reconcile: () =>
    call<{ running: number; retrying: number; queued: number; total: number }>('POST', '/v1/admin/reconcile', {}),
};
