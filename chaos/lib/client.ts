/** The api as a user calls it: @tasksys/client, with the retries a careful user adds through outages. */
import { randomUUID } from 'node:crypto';
import { ApiError, type CreateTaskRequest, TasksysClient, type TaskType } from '@tasksys/client';
import { sleep } from './processes';

export interface TaskJson {
  id: string;
  status: string;
  attempt: number;
  [k: string]: unknown;
}

export interface TaskSpec {
  type: string;
  payload: Record<string, unknown>;
  maxAttempts?: number;
  timeoutMs?: number;
}

export class ApiClient {
  constructor(
    private readonly baseUrl: () => string,
    readonly key: string,
    readonly owner: string,
  ) {}

  static async createKey(baseUrl: () => string, adminKey: string, owner: string): Promise<ApiClient> {
    const issued = await new TasksysClient({ baseUrl: baseUrl(), key: adminKey }).admin.createKey(owner, 'user');
    return new ApiClient(baseUrl, issued.key, owner);
  }

  /** The typed client, at the api's current address (a scenario may move it); each call times out after 15 s. */
  private client(): TasksysClient {
    return new TasksysClient({
      baseUrl: this.baseUrl(),
      key: this.key,
      fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(15_000) }),
    });
  }

  get url(): string {
    return this.baseUrl();
  }

  /** A raw call, for what the typed client refuses to send (the fuzzer's malformed bodies, a raw batch). */
  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.baseUrl()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, json };
  }

  /**
   * Submits one task, retrying through outages (connection refused, 5xx while the database is
   * down) with the same Idempotency-Key, so a retry never makes a second task. Returns the task.
   */
  async submit(spec: TaskSpec, deadlineMs = 90_000): Promise<TaskJson> {
    const key = randomUUID();
    const deadline = Date.now() + deadlineMs;
    const { type, payload, ...options } = spec;
    let last = '';
    for (;;) {
      try {
        const task = await this.client().submit(type as TaskType, payload as CreateTaskRequest['payload'], {
          ...options,
          idempotencyKey: key,
        });
        return task as unknown as TaskJson;
      } catch (err) {
        if (err instanceof ApiError && err.status < 500 && err.status !== 429)
          throw new Error(`submit rejected: ${err.status} ${JSON.stringify(err.body)}`);
        last = err instanceof ApiError ? `${err.status} ${JSON.stringify(err.body)}` : (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`submit did not succeed before the deadline: ${last}`);
      await sleep(250);
    }
  }

  /**
   * Submits `specs` as batches (POST /v1/tasks/batch, up to 1,000 a request), so their tasks travel
   * in bundles (docs/ARCHITECTURE.md, "Bundles"). A batch has no idempotency key: only what cannot
   * have written anything is retried (a 429, a refused connection); anything else fails the scenario.
   */
  async submitBatch(specs: TaskSpec[], deadlineMs = 90_000): Promise<TaskJson[]> {
    const out: TaskJson[] = [];
    for (let i = 0; i < specs.length; i += 1000) {
      const chunk = specs.slice(i, i + 1000) as unknown as CreateTaskRequest[];
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        try {
          out.push(...((await this.client().submitBatch(chunk)) as unknown as TaskJson[]));
          break;
        } catch (err) {
          const refused = (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
          if (!(err instanceof ApiError && err.status === 429) && !refused)
            throw new Error(
              `batch submit failed: ${err instanceof ApiError ? `${err.status} ${JSON.stringify(err.body)}` : (err as Error).message}`,
            );
          if (Date.now() > deadline) throw new Error(`batch submit did not succeed before the deadline`);
          await sleep(250);
        }
      }
    }
    return out;
  }

  async submitMany(specs: TaskSpec[], concurrency = 8): Promise<TaskJson[]> {
    const out: TaskJson[] = new Array(specs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < specs.length) {
          const i = next++;
          out[i] = await this.submit(specs[i]);
        }
      }),
    );
    return out;
  }

  /** The answer's status: 202 when cancelled, 409 when it had finished already. */
  async cancel(id: string): Promise<number> {
    try {
      await this.client().cancel(id);
      return 202;
    } catch (err) {
      if (err instanceof ApiError) return err.status;
      throw err;
    }
  }
}

export function sleepSpec(msMin: number, msMax: number, extra: Record<string, unknown> = {}): TaskSpec {
  const ms = Math.floor(msMin + Math.random() * (msMax - msMin));
  return {
    type: 'demo.sleep',
    payload: { ms, steps: Math.max(1, Math.min(5, Math.floor(ms / 200))), ...extra },
    maxAttempts: 5,
  };
}
