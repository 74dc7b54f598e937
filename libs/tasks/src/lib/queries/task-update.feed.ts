import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Observable } from 'rxjs';
import { pgConnectionConfig } from '../data-source.options';
import type { DatabaseConfig } from '../database.config';
import { PgNotificationListener } from '../pg-notification.listener';
import type { TaskStatus } from '../task-status';
import { InjectDatabaseConfig } from '../tasks.constants';

/** One task's change of status or progress, as the tasks table trigger reports it on `<schema>.task_updates`. */
export interface TaskUpdate {
  id: string;
  status: TaskStatus;
  attempt: number;
  percent: number;
  message: string | null;
}

/** `update`: a committed change; `resync`: notifications may have been lost (listener reconnected), re-read the task. */
export type TaskFeedEvent = { kind: 'update'; update: TaskUpdate } | { kind: 'resync' };

type Watcher = (event: TaskFeedEvent) => void;

/** A task's entry in a statement's notification (migration 1764700000000): `[id, status, attempt, percent, message]`. */
type TaskUpdateEntry = [string, TaskStatus, number, number, string | null];

/**
 * @internal The changes one notification carries. Since migration 1764700000000, a JSON array of every
 * task one statement changed (several notifications when they do not fit in one); before it (and after
 * its down), one JSON object per changed row. Null: not a payload of either shape.
 */
export function parseTaskUpdates(payload: string): TaskUpdate[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return null;
  }
  if (Array.isArray(parsed)) {
    const entries = parsed as unknown[];
    if (!entries.every((e) => Array.isArray(e) && e.length === 5 && typeof e[0] === 'string')) return null;
    return (entries as TaskUpdateEntry[]).map(([id, status, attempt, percent, message]) => ({
      id,
      status,
      attempt,
      percent,
      message,
    }));
  }
  if (typeof parsed === 'object' && parsed !== null && typeof (parsed as TaskUpdate).id === 'string')
    return [parsed as TaskUpdate];
  return null;
}

/**
 * One LISTEN connection per process, fanned out to every watcher of a task (SSE streams).
 * It listens from application start, so a watcher that subscribes and then reads the task
 * misses nothing committed after its read. A statement that changes many tasks (a batched claim
 * or completion) arrives as one notification, or a few, listing them all: each watcher of each of
 * them is told, in the order of the list.
 */
@Injectable()
export class TaskUpdateFeed implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TaskUpdateFeed.name);
  private readonly watchers = new Map<string, Set<Watcher>>();
  private listener: PgNotificationListener | null = null;

  constructor(@InjectDatabaseConfig() private readonly config: DatabaseConfig) {}

  async onApplicationBootstrap(): Promise<void> {
    this.listener = new PgNotificationListener(
      pgConnectionConfig(this.config),
      `${this.config.DATABASE_SCHEMA}.task_updates`,
      (payload) => this.dispatch(payload),
      () => this.resyncAll(),
    );
    await this.listener.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.listener?.close();
    this.listener = null;
  }

  /** Changes of one task, as they commit. Hot: only changes after subscription. */
  watch(taskId: string): Observable<TaskFeedEvent> {
    return new Observable<TaskFeedEvent>((subscriber) => {
      const watcher: Watcher = (e) => subscriber.next(e);
      let set = this.watchers.get(taskId);
      if (!set) this.watchers.set(taskId, (set = new Set()));
      set.add(watcher);
      return () => {
        set.delete(watcher);
        if (set.size === 0 && this.watchers.get(taskId) === set) this.watchers.delete(taskId);
      };
    });
  }

  /** Number of tasks being watched (for metrics). */
  get watchedTasks(): number {
    return this.watchers.size;
  }

  private dispatch(payload: string): void {
    if (this.watchers.size === 0) return; // every change of every task arrives here; most have no watcher
    const updates = parseTaskUpdates(payload);
    if (!updates) {
      this.logger.warn(`ignoring malformed task update notification: ${payload.slice(0, 200)}`);
      return;
    }
    for (const update of updates) for (const w of this.watchers.get(update.id) ?? []) w({ kind: 'update', update });
  }

  private resyncAll(): void {
    for (const set of this.watchers.values()) for (const w of set) w({ kind: 'resync' });
  }
}
