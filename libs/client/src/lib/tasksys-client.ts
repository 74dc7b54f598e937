import createClient, { type Client } from 'openapi-fetch';
import type { paths } from '../generated/openapi';
import { ApiError, WaitTimeoutError } from './api-error';
import { parseEventStream } from './event-stream';
import {
  type ApiKey,
  type BrokerMessageList,
  type CreateTaskRequest,
  type DeadLetterRedrive,
  isTerminal,
  type ListTasksQuery,
  type QueueList,
  type Reconcile,
  type ReconcileRequest,
  type RedriveDeadLettersRequest,
  type RedriveRequest,
  type ReportPage,
  type SubmitOptions,
  type Task,
  type TaskEvent,
  type TaskPage,
  type TaskPayload,
  type TaskProgress,
  type TaskStreamEvent,
  type TaskType,
  type UnroutedRedrive,
  type WorkerFleet,
} from './types';

export interface TasksysClientOptions {
  /** The api's address, e.g. `http://localhost:3000`; '' (the default) for the page's own origin in a browser. */
  baseUrl?: string;
  /** The API key, or a function read before every call (a key that may change, e.g. kept in localStorage). */
  key?: string | null | (() => string | null | undefined);
  /** Another fetch (tests, proxies); globalThis.fetch by default. */
  fetch?: typeof fetch;
  /** Told of every 401 and 403 answer (the key is missing, unknown, revoked or not an admin's). */
  onUnauthorized?: (error: ApiError) => void;
}

export interface StreamOptions {
  signal?: AbortSignal;
  /** Resume after this event id (the stream's `id:` field), as a reconnect does. */
  lastEventId?: string;
  /** First delay before reconnecting after a drop, in ms (doubles up to 5 s; a `retry:` field overrides it). */
  reconnectDelayMs?: number;
}

export interface WaitOptions {
  /** Give up (WaitTimeoutError) after this long; no limit by default. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with each event of the stream while waiting (a progress bar). */
  onEvent?: (event: TaskStreamEvent) => void;
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

const MAX_RECONNECT_DELAY_MS = 5000;

function abortable(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The tasksys api, typed from its OpenAPI document (openapi-fetch underneath: `raw` is there for
 * any route without a helper). Every helper resolves to the answer's body or throws an ApiError
 * with the api's status, code and message; a network failure throws fetch's own error.
 */
export class TasksysClient {
  /** The generated client itself: `raw.GET('/v1/tasks/{id}', { params: { path: { id } } })`. */
  readonly raw: Client<paths>;
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: TasksysClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    // Looked up at call time: a test (or the page) may replace globalThis.fetch after construction.
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.raw = createClient<paths>({ baseUrl: this.baseUrl, fetch: (request) => this.fetchFn(request) });
    this.raw.use({
      onRequest: ({ request }) => {
        const key = this.key();
        if (key) request.headers.set('authorization', `Bearer ${key}`);
        return request;
      },
    });
  }

  private key(): string | null | undefined {
    const k = this.options.key;
    return typeof k === 'function' ? k() : k;
  }

  private unwrap<T>(answer: Answer<T>): T {
    if (answer.error === undefined && answer.response.ok) return answer.data as T;
    const error = ApiError.from(answer.response, answer.error);
    if (error.status === 401 || error.status === 403) this.options.onUnauthorized?.(error);
    throw error;
  }

  /** Submits one task: `submit('demo.sleep', { ms: 1000 }, { priority: 5, idempotencyKey })`. */
  async submit<T extends TaskType>(type: T, payload: TaskPayload<T>, options: SubmitOptions = {}): Promise<Task> {
    const { idempotencyKey, ...fields } = options;
    const body = { ...fields, type, payload } as CreateTaskRequest;
    return this.unwrap(
      await this.raw.POST('/v1/tasks', {
        body,
        params: { header: idempotencyKey === undefined ? undefined : { 'Idempotency-Key': idempotencyKey } },
      }),
    );
  }

  /** Submits up to 1000 tasks, all or nothing; the tasks come back in request order. */
  async submitBatch(tasks: CreateTaskRequest[]): Promise<Task[]> {
    return this.unwrap(await this.raw.POST('/v1/tasks/batch', { body: { tasks } })).items;
  }

  async get(id: string): Promise<Task> {
    return this.unwrap(await this.raw.GET('/v1/tasks/{id}', { params: { path: { id } } }));
  }

  /** One page, newest first; pass `nextCursor` as `cursor` for the next. */
  async list(query: ListTasksQuery = {}): Promise<TaskPage> {
    return this.unwrap(await this.raw.GET('/v1/tasks', { params: { query } }));
  }

  async start(id: string): Promise<Task> {
    return this.unwrap(await this.raw.POST('/v1/tasks/{id}/start', { params: { path: { id } } }));
  }

  async cancel(id: string): Promise<Task> {
    return this.unwrap(await this.raw.POST('/v1/tasks/{id}/cancel', { params: { path: { id } } }));
  }

  async retry(id: string): Promise<Task> {
    return this.unwrap(await this.raw.POST('/v1/tasks/{id}/retry', { params: { path: { id } } }));
  }

  /** The transition log, oldest first. */
  async events(id: string): Promise<TaskEvent[]> {
    return this.unwrap(await this.raw.GET('/v1/tasks/{id}/events', { params: { path: { id } } })).items;
  }

  /**
   * The task's live events (Server-Sent Events), ending after its terminal status. A dropped
   * connection (network, an api restart) is reopened with backoff, sending Last-Event-ID when
   * the stream gave ids; the first event after a reconnect is the task's current status, so
   * nothing is missed that matters. Error answers (404, 401) end it with an ApiError.
   */
  async *stream(id: string, options: StreamOptions = {}): AsyncGenerator<TaskStreamEvent> {
    let lastEventId = options.lastEventId;
    const firstDelay = options.reconnectDelayMs ?? 500;
    let delay = firstDelay;
    for (;;) {
      let response: Response | undefined;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        const key = this.key();
        if (key) headers['authorization'] = `Bearer ${key}`;
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        response = await this.fetchFn(`${this.baseUrl}/v1/tasks/${encodeURIComponent(id)}/stream`, {
          headers,
          signal: options.signal,
        });
      } catch (err) {
        if (options.signal?.aborted) throw err;
        // Unreachable for now (connection refused, reset): try again, as EventSource does.
      }
      if (response && !response.ok) {
        const text = await response.text().catch(() => '');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        const error = ApiError.from(response, body);
        // A restarting api or a proxy in between answers 5xx for a moment: reconnect; 4xx is final.
        if (response.status < 500 && response.status !== 429) {
          if (error.status === 401 || error.status === 403) this.options.onUnauthorized?.(error);
          throw error;
        }
      } else if (response?.body) {
        try {
          for await (const e of parseEventStream(response.body)) {
            if (e.id !== undefined) lastEventId = e.id;
            if (e.retry !== undefined) delay = e.retry;
            else delay = firstDelay;
            const data = JSON.parse(e.data) as unknown;
            if (e.event === 'status') {
              const task = data as Task;
              yield { event: 'status', id: e.id, task };
              if (isTerminal(task.status)) return;
            } else if (e.event === 'progress') {
              yield { event: 'progress', id: e.id, progress: data as TaskProgress };
            }
          }
        } catch (err) {
          if (options.signal?.aborted) throw err;
          // The connection dropped mid-stream: reconnect below.
        }
      }
      await abortable(delay, options.signal);
      delay = Math.min(delay * 2, MAX_RECONNECT_DELAY_MS);
    }
  }

  /** Resolves to the task once it is terminal (succeeded, failed or cancelled), following its stream. */
  async waitFor(id: string, options: WaitOptions = {}): Promise<Task> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, options.timeoutMs);
    try {
      for await (const event of this.stream(id, { signal: controller.signal })) {
        options.onEvent?.(event);
        if (event.event === 'status' && isTerminal(event.task.status)) return event.task;
      }
      // The stream only ends on a terminal status; read the task to be sure.
      return await this.get(id);
    } catch (err) {
      if (timedOut) throw new WaitTimeoutError(id, options.timeoutMs ?? 0);
      throw err;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Operators' calls: an admin key. */
  readonly admin = {
    /** Issues a key; its secret is only in this answer. */
    createKey: async (owner: string, role: 'user' | 'admin' = 'user'): Promise<ApiKey> =>
      this.unwrap(await this.raw.POST('/v1/admin/api-keys', { body: { owner, role } })),
    deadLetters: async (limit?: number): Promise<BrokerMessageList> =>
      this.unwrap(await this.raw.GET('/v1/admin/dead-letters', { params: { query: { limit } } })),
    redriveDeadLetters: async (body: RedriveDeadLettersRequest = {}): Promise<DeadLetterRedrive> =>
      this.unwrap(await this.raw.POST('/v1/admin/dead-letters/redrive', { body })),
    unrouted: async (limit?: number): Promise<BrokerMessageList> =>
      this.unwrap(await this.raw.GET('/v1/admin/unrouted', { params: { query: { limit } } })),
    redriveUnrouted: async (body: RedriveRequest = {}): Promise<UnroutedRedrive> =>
      this.unwrap(await this.raw.POST('/v1/admin/unrouted/redrive', { body })),
    workers: async (): Promise<WorkerFleet> => this.unwrap(await this.raw.GET('/v1/admin/workers')),
    queues: async (): Promise<QueueList> => this.unwrap(await this.raw.GET('/v1/admin/queues')),
    reports: async (query: { limit?: number; cursor?: string } = {}): Promise<ReportPage> =>
      this.unwrap(await this.raw.GET('/v1/admin/reports', { params: { query } })),
    reconcile: async (body: ReconcileRequest = {}): Promise<Reconcile> =>
      this.unwrap(await this.raw.POST('/v1/admin/reconcile', { body })),
  };
}
