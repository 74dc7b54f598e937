/** A small HTTP client of the api, as a user would call it. */
import { randomUUID } from 'node:crypto';
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
    const res = await fetch(`${baseUrl()}/v1/admin/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner, role: 'user' }),
    });
    if (res.status !== 201) throw new Error(`create key: ${res.status} ${await res.text()}`);
    return new ApiClient(baseUrl, ((await res.json()) as { key: string }).key, owner);
  }

  get url(): string {
    return this.baseUrl();
  }

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
    let last = '';
    for (;;) {
      try {
        const r = await this.request('POST', '/v1/tasks', spec, { 'idempotency-key': key });
        if (r.status === 201 || r.status === 200) return r.json as TaskJson;
        last = `${r.status} ${JSON.stringify(r.json)}`;
        if (r.status < 500 && r.status !== 429) throw new Error(`submit rejected: ${last}`);
      } catch (err) {
        if ((err as Error).message.startsWith('submit rejected')) throw err;
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`submit did not succeed before the deadline: ${last}`);
      await sleep(250);
    }
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

  async cancel(id: string): Promise<number> {
    return (await this.request('POST', `/v1/tasks/${id}/cancel`)).status;
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
