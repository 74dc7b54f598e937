import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  CallbackUrlRefused,
  checkCallbackUrl,
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
  WebhookSecrets,
} from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';
import { actorOf, ownerScope } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { requestHash } from './request-hash';
import { type CreateTaskRequestDto, MAX_DELAY_MS } from './task.dto';

export type TaskAction = 'start' | 'cancel' | 'retry';

/** Where each action leads: finding the task already there means a repeated request, answered like the first. */
const TARGET: Record<TaskAction, readonly TaskStatus[]> = {
  start: ['queued', 'scheduled'],
  cancel: ['cancelled'],
  retry: ['queued'],
};

/** ISO 8601 date and time with an offset (`Z` or `±hh:mm`): a time without one would mean the server's zone. */
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The task use cases of the HTTP API: validate, scope to the owner, delegate to the task store. */
@Injectable()
export class TasksService {
  constructor(
    private readonly sm: TaskStateMachine,
    private readonly queries: TaskQueries,
    private readonly types: TaskTypeRegistry,
    private readonly batch: CreateTaskBatchCommand,
    private readonly secrets: WebhookSecrets,
    @Inject(ConfigService) private readonly config: ConfigService<ApiConfig, true>,
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
    await this.checkCallbacks(p, [dto], () => '');
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
    const tasks = items.map((dto, i) => this.toNewTask(p, dto, `tasks[${i}].`));
    await this.checkCallbacks(p, items, (i) => `tasks[${i}].`);
    return this.batch.execute(tasks, { actor: actorOf(p), traceparent });
  }

  /**
   * Callback urls: syntax, and every address the host resolves to (unless WEBHOOK_ALLOW_PRIVATE); the
   * owner must have a signing secret already, since deliveries signed with a secret nobody was shown
   * could not be verified. A 400 naming `callbackUrl` (`tasks[i].callbackUrl` in a batch).
   */
  private async checkCallbacks(
    p: Principal,
    items: CreateTaskRequestDto[],
    prefix: (index: number) => string,
  ): Promise<void> {
    const allowPrivate = this.config.get('WEBHOOK_ALLOW_PRIVATE', { infer: true });
    const checks = new Map<string, Promise<string | null>>();
    for (const url of new Set(items.map((d) => d.callbackUrl).filter((u): u is string => u !== undefined))) {
      checks.set(
        url,
        checkCallbackUrl(url, allowPrivate).then(
          () => null,
          (err: unknown) => {
            if (err instanceof CallbackUrlRefused) return err.message;
            throw err;
          },
        ),
      );
    }
    if (checks.size === 0) return;
    const refusals = new Map<string, string | null>();
    for (const [url, check] of checks) refusals.set(url, await check);
    const first = items.findIndex((d) => d.callbackUrl !== undefined && refusals.get(d.callbackUrl) !== null);
    if (first >= 0) {
      const field = `${prefix(first)}callbackUrl`;
      throw new RequestValidationError(field, `${field} ${refusals.get(items[first].callbackUrl!)}`);
    }
    if (!(await this.secrets.hasSecret(p.owner))) {
      const field = `${prefix(items.findIndex((d) => d.callbackUrl !== undefined))}callbackUrl`;
      throw new RequestValidationError(
        field,
        `${field}: owner ${p.owner} has no webhook signing secret yet; create one with POST /v1/webhooks/secret`,
      );
    }
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
    if (r.applied || TARGET[action].includes(r.task.status)) return r.task;
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
      callbackUrl: dto.callbackUrl ?? null,
      ...this.dueTime(dto, prefix),
    };
  }

  /** `runAt` or `delayMs` (not both) as the task store takes them; the delay runs from the database's clock. */
  private dueTime(dto: CreateTaskRequestDto, prefix: string): { runAt?: Date; delayMs?: number } {
    if (dto.runAt !== undefined && dto.delayMs !== undefined)
      throw new RequestValidationError(
        `${prefix}runAt`,
        `${prefix}runAt and ${prefix}delayMs: give one of them, not both`,
      );
    if (dto.delayMs !== undefined) return { delayMs: dto.delayMs };
    if (dto.runAt === undefined) return {};
    const runAt = new Date(dto.runAt);
    if (!ISO_WITH_OFFSET.test(dto.runAt) || Number.isNaN(runAt.getTime()))
      throw new RequestValidationError(
        `${prefix}runAt`,
        `${prefix}runAt must be an ISO 8601 date and time with an offset, e.g. 2026-12-01T22:00:00Z or 2026-12-01T23:00:00+01:00`,
      );
    if (runAt.getTime() > Date.now() + MAX_DELAY_MS)
      throw new RequestValidationError(`${prefix}runAt`, `${prefix}runAt must be at most a year ahead`);
    return { runAt };
  }

  /** A submit's type, payload and timeout checked (schedules reuse it for their task); `prefix` names the item. */
  check(
    dto: Pick<CreateTaskRequestDto, 'type' | 'payload' | 'timeoutMs'>,
    prefix: string,
  ): { payload: unknown; definition: TaskTypeDefinition } {
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
