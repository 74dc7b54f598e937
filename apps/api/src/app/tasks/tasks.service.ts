import { Injectable } from '@nestjs/common';
import {
  CreateTaskBatchCommand,
  IdempotencyConflictError,
  InvalidTransitionError,
  type NewBatchTask,
  type Principal,
  type Task,
  TaskNotFoundError,
  TaskQueries,
  TaskStateMachine,
  type TaskStatus,
  TaskTypeRegistry,
  type TaskTypeDefinition,
} from '@tasksys/tasks';
import { actorOf, ownerScope } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { requestHash } from './request-hash';
import type { CreateTaskRequestDto } from './task.dto';

export type TaskAction = 'start' | 'cancel' | 'retry';

/** Where each action leads: finding the task already there means a repeated request, answered like the first. */
const TARGET: Record<TaskAction, TaskStatus> = { start: 'queued', cancel: 'cancelled', retry: 'queued' };

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The task use cases of the HTTP API: validate, scope to the owner, delegate to the task store. */
@Injectable()
export class TasksService {
  constructor(
    private readonly sm: TaskStateMachine,
    private readonly queries: TaskQueries,
    private readonly types: TaskTypeRegistry,
    private readonly batch: CreateTaskBatchCommand,
  ) {}

  /** 201 when created; 200 (created false) when the same key and body were seen before; 409 for the same key with another body. */
  /** `traceparent` (W3C) travels in the work message's headers into the worker's logs. */
  async create(
    p: Principal,
    dto: CreateTaskRequestDto,
    rawBody: unknown,
    idempotencyKey: string | undefined,
    traceparent?: string,
  ): Promise<{ created: boolean; task: Task }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new RequestValidationError(
        'Idempotency-Key',
        'Idempotency-Key header must be 1-200 printable ASCII characters',
      );
    }
    const { start, ...fields } = this.toNewTask(p, dto, '');
    if (idempotencyKey === undefined) {
      // Nothing to look up first: concurrent submits share one insert statement.
      return {
        created: true,
        task: await this.batch.createOne({ ...fields, start }, { actor: actorOf(p), traceparent }),
      };
    }
    const hash = requestHash(rawBody);
    const result = await this.sm.create(
      { ...fields, idempotencyKey, requestHash: hash },
      { start, actor: actorOf(p), traceparent },
    );
    if (!result.created && result.task.requestHash !== hash) throw new IdempotencyConflictError();
    return result;
  }

  /** All or nothing: the first bad item (by index) fails the whole batch before anything is written. */
  async createBatch(p: Principal, items: CreateTaskRequestDto[], traceparent?: string): Promise<Task[]> {
    return this.batch.execute(
      items.map((dto, i) => this.toNewTask(p, dto, `tasks[${i}].`)),
      { actor: actorOf(p), traceparent },
    );
  }

  async get(p: Principal, id: string): Promise<Task> {
    const task = await this.queries.findVisible(id, ownerScope(p));
    if (!task) throw new TaskNotFoundError(id);
    return task;
  }

  /** start / cancel / retry. Applied, or already in the target state: the task. Otherwise 409 naming the current state. */
  async act(p: Principal, id: string, action: TaskAction): Promise<Task> {
    await this.get(p, id); // owners never learn whether another owner's task exists
    const actor = actorOf(p);
    const r = await (action === 'start'
      ? this.sm.start(id, actor)
      : action === 'cancel'
        ? this.sm.cancel(id, actor)
        : this.sm.retry(id, actor));
    if (!r.task) throw new TaskNotFoundError(id);
    if (r.applied || r.task.status === TARGET[action]) return r.task;
    throw new InvalidTransitionError(action, r.task.status);
  }

  /** A validated submit as the task store takes it, with the task type's defaults; `prefix` names the item in errors. */
  private toNewTask(p: Principal, dto: CreateTaskRequestDto, prefix: string): NewBatchTask {
    const { payload, definition } = this.check(dto, prefix);
    return {
      owner: p.owner,
      type: dto.type,
      payload,
      maxAttempts: dto.maxAttempts ?? definition.maxAttempts,
      timeoutMs: dto.timeoutMs ?? definition.timeoutMs,
      priority: dto.priority ?? 0,
      start: dto.start ?? true,
    };
  }

  private check(dto: CreateTaskRequestDto, prefix: string): { payload: unknown; definition: TaskTypeDefinition } {
    const c = this.types.check(dto.type, dto.payload);
    if (!c.ok)
      throw new RequestValidationError(
        `${prefix}${c.field}`,
        `${prefix}${c.message.startsWith(c.field) ? c.message : `${c.field}: ${c.message}`}`,
      );
    if (dto.timeoutMs !== undefined && dto.timeoutMs > c.definition.timeoutMs) {
      throw new RequestValidationError(
        `${prefix}timeoutMs`,
        `${prefix}timeoutMs must not be greater than ${c.definition.timeoutMs} for ${dto.type}`,
      );
    }
    return { payload: c.payload, definition: c.definition };
  }
}
