import type { DataSource } from 'typeorm';
import { type TaskStateMachine } from '@tasksys/tasks';
import { waitFor } from '@tasksys/testing';

export interface SubmitOptions {
  type?: string;
  maxAttempts?: number;
  priority?: number;
  timeoutMs?: number;
}

/** What the worker process tests do to tasks and read back from the database, in one place. */
export class TaskProbes {
  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
  ) {}

  /** `n` tasks started at once (queued, their messages in the outbox), as the api would create them. */
  async submit(n: number, payload: Record<string, unknown>, opts: SubmitOptions = {}): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { task } = await this.sm.create(
        {
          owner: 'test',
          type: opts.type ?? 'demo.sleep',
          payload,
          maxAttempts: opts.maxAttempts ?? 3,
          timeoutMs: opts.timeoutMs ?? 120_000,
          priority: opts.priority ?? 0,
        },
        { start: true, actor: 'owner:test' },
      );
      ids.push(task.id);
    }
    return ids;
  }

  async row(id: string): Promise<{ status: string; attempt: number; lease_owner: string | null }> {
    return (await this.db.query(`SELECT status, attempt, lease_owner FROM tasks WHERE id = $1`, [id]))[0];
  }

  async statusCounts(ids: string[]): Promise<Record<string, number>> {
    const rows: { status: string; n: number }[] = await this.db.query(
      `SELECT status, count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) GROUP BY status`,
      [ids],
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Waits until every one of `ids` is in `status`; the timeout error says where they are instead. */
  async allIn(ids: string[], status: string, timeoutMs: number): Promise<void> {
    let counts: Record<string, number> = {};
    await waitFor(
      `${ids.length} tasks ${status}`,
      async () => {
        counts = await this.statusCounts(ids);
        return counts[status] === ids.length;
      },
      timeoutMs,
      200,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; counts ${JSON.stringify(counts)}`);
    });
  }

  /** `running` events per task (one each: every task ran once). */
  async runsPerTask(ids: string[]): Promise<number[]> {
    const rows: { n: number }[] = await this.db.query(
      `SELECT count(e.id)::int AS n FROM unnest($1::uuid[]) AS x(id)
         LEFT JOIN task_events e ON e.task_id = x.id AND e.to_status = 'running'
        GROUP BY x.id`,
      [ids],
    );
    return rows.map((r) => r.n);
  }
}

/** A counter of a worker's Prometheus endpoint, summed over the series whose labels include `labels`. */
export async function workerMetric(port: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}
