import { type BeforeApplicationShutdown, Inject, Injectable, type MessageEvent } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Observable, type Subscriber } from 'rxjs';
import { isTerminal, type Task, TaskQueries, type TaskStatus, type TaskUpdate, TaskUpdateFeed } from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';
import { toTaskView } from './task.views';

interface Shown {
  status: TaskStatus;
  attempt: number;
  percent: number;
  message: string | null;
}

/**
 * Live view of one task for Server-Sent Events. The first event is the current state; then
 * `status` (the whole task, on every state change) and `progress` ({percent, message}) as
 * PostgreSQL notifies them; the stream completes after a terminal status. Heartbeat comments
 * keep proxies from closing a quiet stream.
 */
@Injectable()
export class TaskStreamService implements BeforeApplicationShutdown {
  private readonly heartbeatMs: number;
  private readonly open = new Set<Subscriber<MessageEvent>>();

  constructor(
    private readonly queries: TaskQueries,
    private readonly feed: TaskUpdateFeed,
    @Inject(ConfigService) config: ConfigService<ApiConfig, true>,
  ) {
    this.heartbeatMs = config.get('SSE_HEARTBEAT_MS', { infer: true });
  }

  /** Ends every open stream before the HTTP server closes, so shutdown does not wait for clients (EventSource reconnects elsewhere). */
  beforeApplicationShutdown(): void {
    for (const sub of this.open) sub.complete();
  }

  /** Call after checking the caller may see the task. */
  stream(id: string): Observable<MessageEvent> {
    return new Observable<MessageEvent>((sub) => {
      this.open.add(sub);
      let shown: Shown | null = null;
      // One step at a time, in arrival order: a status change re-reads the row before the next update is looked at.
      let chain: Promise<void> = Promise.resolve();
      const enqueue = (step: () => Promise<void> | void) => {
        chain = chain.then(step).catch((err: unknown) => sub.error(err));
      };

      const showTask = (task: Task | null) => {
        if (sub.closed || !task) return;
        const next: Shown = {
          status: task.status,
          attempt: task.attempt,
          percent: task.progressPercent,
          message: task.progressMessage,
        };
        if (!shown || shown.status !== next.status || shown.attempt !== next.attempt) {
          sub.next({ type: 'status', data: toTaskView(task) });
        } else if (shown.percent !== next.percent || shown.message !== next.message) {
          sub.next({ type: 'progress', data: { id, percent: next.percent, message: next.message } });
        }
        shown = next;
        if (isTerminal(task.status)) sub.complete();
      };
      const reread = async () => showTask(await this.queries.findVisible(id, null));
      const onUpdate = async (u: TaskUpdate) => {
        if (sub.closed) return;
        if (shown && u.status === shown.status && u.attempt === shown.attempt) {
          // Same run: progress only. A notification older than what was read is skipped.
          if (u.percent < shown.percent || (u.percent === shown.percent && u.message === shown.message)) return;
          shown = { ...shown, percent: u.percent, message: u.message };
          sub.next({ type: 'progress', data: { id, percent: u.percent, message: u.message } });
          return;
        }
        await reread();
      };

      // Subscribe first, then read: nothing committed after the read can be missed.
      const feedSub = this.feed
        .watch(id)
        .subscribe((e) => enqueue(() => (e.kind === 'resync' ? reread() : onUpdate(e.update))));
      enqueue(reread);
      const heartbeat = setInterval(() => sub.next({ comment: 'heartbeat' }), this.heartbeatMs);
      return () => {
        this.open.delete(sub);
        clearInterval(heartbeat);
        feedSub.unsubscribe();
      };
    });
  }
}
