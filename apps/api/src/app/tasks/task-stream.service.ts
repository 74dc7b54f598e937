import { type BeforeApplicationShutdown, Inject, Injectable, type MessageEvent } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Observable, type Subscriber } from 'rxjs';
import {
  isTerminal,
  type Task,
  TaskEventLog,
  type TaskEventSnapshot,
  type TaskStreamEvent,
  TaskUpdateFeed,
} from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';
import { type TaskView, toTaskView } from './task.views';

/** Events read per statement while catching up; a longer backlog takes several reads, in order. */
const BATCH = 500;

/**
 * A status event's view: the task as it is when the event is its latest; an older one (replayed to a
 * client that resumed) shows that event's status, attempt, error and time over the task as it is now.
 */
function statusView(task: Task, e: Extract<TaskStreamEvent, { kind: 'status' }>, latest: boolean): TaskView {
  const view = toTaskView(task);
  if (latest) return view;
  return {
    ...view,
    status: e.to,
    attempt: e.attempt,
    error: e.error,
    result: e.to === 'succeeded' ? view.result : null,
    updatedAt: e.at.toISOString(),
    finishedAt: isTerminal(e.to) ? e.at.toISOString() : null,
  };
}

/**
 * Live view of one task for Server-Sent Events, resumable. Every event carries `id:`, the id of the
 * task's event in the one order of its status (`task_events`) and progress (`task_progress`) events.
 * Without Last-Event-ID the first event is the current state (`status`, id = the latest event's);
 * with it, exactly the events after that id are replayed from the database. Then live ones: each
 * notification (or a listener resync) reads the events after the last id sent, so nothing is
 * repeated or missed, whatever was coalesced or lost on the way. Subscribe first, then read: nothing
 * committed after the read can be missed. The stream completes after the terminal status event.
 * Heartbeat comments keep proxies from closing a quiet stream.
 */
@Injectable()
export class TaskStreamService implements BeforeApplicationShutdown {
  private readonly heartbeatMs: number;
  private readonly open = new Set<Subscriber<MessageEvent>>();

  constructor(
    private readonly log: TaskEventLog,
    private readonly feed: TaskUpdateFeed,
    @Inject(ConfigService) config: ConfigService<ApiConfig, true>,
  ) {
    this.heartbeatMs = config.get('SSE_HEARTBEAT_MS', { infer: true });
  }

  /** Ends every open stream before the HTTP server closes, so shutdown does not wait for clients (EventSource reconnects elsewhere). */
  beforeApplicationShutdown(): void {
    for (const sub of this.open) sub.complete();
  }

  /** Call after checking the caller may see the task. `lastEventId`: the client's Last-Event-ID (digits), if it resumes. */
  stream(id: string, lastEventId?: string): Observable<MessageEvent> {
    return new Observable<MessageEvent>((sub) => {
      this.open.add(sub);
      let last: string | null = lastEventId ?? null;
      let reading = false;
      let again = false;

      const send = (snapshot: TaskEventSnapshot) => {
        const { task, events } = snapshot;
        if (!task) return sub.complete();
        const latestStatus = [...events].reverse().find((e) => e.kind === 'status');
        for (const e of events) {
          if (sub.closed) return;
          if (e.kind === 'progress')
            sub.next({ type: 'progress', id: e.id, data: { id, percent: e.percent, message: e.message } });
          else sub.next({ type: 'status', id: e.id, data: statusView(task, e, e === latestStatus) });
          last = e.id;
        }
        // Everything up to the task's latest event was sent and it is terminal: nothing more will come.
        if (isTerminal(task.status) && (snapshot.lastId === null || BigInt(last ?? '0') >= BigInt(snapshot.lastId)))
          sub.complete();
      };

      const catchUp = async () => {
        if (last === null) {
          const snapshot = await this.log.current(id);
          if (sub.closed || !snapshot.task) return sub.complete();
          last = snapshot.lastId ?? '0';
          sub.next({ type: 'status', id: last, data: toTaskView(snapshot.task) });
          if (isTerminal(snapshot.task.status)) sub.complete();
          return;
        }
        for (;;) {
          const snapshot = await this.log.after(id, last, BATCH);
          if (sub.closed) return;
          send(snapshot);
          if (snapshot.events.length < BATCH) return;
        }
      };

      // One read at a time; notifications during a read make one more read after it.
      const wake = () => {
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        void catchUp()
          .catch((err: unknown) => sub.error(err))
          .finally(() => {
            reading = false;
            if (again && !sub.closed) {
              again = false;
              wake();
            }
          });
      };

      const feedSub = this.feed.watch(id).subscribe(() => wake());
      wake();
      const heartbeat = setInterval(() => sub.next({ comment: 'heartbeat' }), this.heartbeatMs);
      return () => {
        this.open.delete(sub);
        clearInterval(heartbeat);
        feedSub.unsubscribe();
      };
    });
  }
}
