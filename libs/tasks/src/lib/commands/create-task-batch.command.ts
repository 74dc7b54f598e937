import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Task } from '../entities';
import { MicroBatcher } from '../execution/micro-batcher';
import { newTaskId } from '../task-id';
import { TaskStateMachine, type NewTaskRow, type QueueLimitRefusal } from '../task-state-machine';
import { OwnerQueueFullError } from '../task.errors';

function isRefusal(r: Task | QueueLimitRefusal | undefined): r is QueueLimitRefusal {
  return (r as QueueLimitRefusal | undefined)?.refused === true;
}

/** A task of a batch; `start` queues it (with its work message) instead of leaving it `new`. */
export type NewBatchTask = Omit<NewTaskRow, 'id' | 'actor' | 'traceparent'>;

/**
 * Creates tasks without an idempotency key: the tasks, their `created` events and (when
 * started) their work messages in the outbox, in ONE statement (TaskStateMachine.createMany).
 * `execute` is one request's batch, all or nothing, results in input order. `createOne` is a
 * single submit: concurrent ones share a statement and its commit (group commit), so a burst
 * of single submits costs the database about what one batch does.
 */
@Injectable()
export class CreateTaskBatchCommand {
  private readonly singles = new MicroBatcher<NewTaskRow, Task | QueueLimitRefusal>({
    maxItems: 500,
    maxInFlight: 2,
    key: (row) => row.id,
    run: (rows) => this.sm.createMany(rows),
    // A row PostgreSQL refuses (data or constraint error) fails only its own request: the group is
    // retried row by row. Anything else (connection lost, pool exhausted) fails the whole group at
    // once, answered 503, as a lone submit would be; a commit whose reply was lost is not retried.
    split: (err) => /^(22|23)/.test(String((err as { code?: unknown })?.code ?? '')),
    // Past this many waiting submits the api sheds load (503 + Retry-After) instead of queueing without bound.
    maxWaiting: 5000,
  });

  constructor(private readonly sm: TaskStateMachine) {}

  /** One request's batch: every task of an owner passes its maxQueued together, or OwnerQueueFullError and nothing is written. */
  async execute(items: NewBatchTask[], opts: { actor: string; traceparent?: string }): Promise<Task[]> {
    const group = randomUUID();
    const rows = items.map((t) => ({
      ...t,
      id: newTaskId(),
      actor: opts.actor,
      traceparent: opts.traceparent ?? null,
      group,
    }));
    const created = await this.sm.createMany(rows);
    const refused = [...created.values()].find(isRefusal);
    if (refused) {
      // Refused owners wrote nothing; a batch of several owners (not from the api) may have written the others'.
      const adding = rows.filter((r) => r.owner === refused.owner).length;
      throw new OwnerQueueFullError(refused.owner, refused.maxQueued, refused.queued, adding);
    }
    return rows.map((r) => created.get(r.id) as Task);
  }

  /** A single submit (sharing a statement with concurrent ones); OwnerQueueFullError at its owner's maxQueued. */
  async createOne(item: NewBatchTask, opts: { actor: string; traceparent?: string }): Promise<Task> {
    const id = newTaskId();
    const task = await this.singles.submit({ ...item, id, actor: opts.actor, traceparent: opts.traceparent ?? null });
    if (!task) throw new Error(`task ${id} was neither created nor refused`);
    if (isRefusal(task)) throw new OwnerQueueFullError(task.owner, task.maxQueued, task.queued);
    return task;
  }
}
