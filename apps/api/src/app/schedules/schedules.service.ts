import { Injectable } from '@nestjs/common';
import {
  CronExpression,
  type Page,
  type Principal,
  type Schedule,
  type ScheduledTaskSpec,
  ScheduleNotFoundError,
  type SchedulePatch,
  ScheduleStore,
} from '@tasksys/tasks';
import { ownerScope } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { TasksService } from '../tasks/tasks.service';
import type {
  CreateScheduleRequestDto,
  ScheduleTaskRequestDto,
  UpdateScheduleRequestDto,
  UpdateScheduleTaskRequestDto,
} from './schedule.dto';

/** The schedule use cases of the HTTP API: validate (the task as a submit would be), scope to the owner, delegate. */
@Injectable()
export class SchedulesService {
  constructor(
    private readonly store: ScheduleStore,
    private readonly tasks: TasksService,
  ) {}

  async create(p: Principal, dto: CreateScheduleRequestDto): Promise<Schedule> {
    const cron = CronExpression.parse(dto.cron, dto.timezone ?? 'UTC');
    const task = this.taskSpec(dto.task);
    return this.store.create({
      owner: p.owner,
      name: dto.name,
      cron: cron.expression,
      timezone: cron.timezone,
      task,
      overlap: dto.overlap ?? 'allow',
      // A new schedule never fires for a time before it existed.
      nextRunAt: this.next(cron, new Date()),
    });
  }

  list(p: Principal, q: { owner?: string; limit?: number; cursor?: string }): Promise<Page<Schedule>> {
    if (q.owner !== undefined && p.role !== 'admin')
      throw new RequestValidationError('owner', 'owner: only admins may list other owners’ schedules');
    return this.store.list({
      owner: p.role === 'admin' ? (q.owner ?? null) : p.owner,
      limit: q.limit ?? 20,
      cursor: q.cursor,
    });
  }

  async get(p: Principal, id: string): Promise<Schedule> {
    const schedule = await this.store.find(id, ownerScope(p));
    if (!schedule) throw new ScheduleNotFoundError(id);
    return schedule;
  }

  /** `cron`, `timezone`, resuming: the next fire time from now (paused fire times are not caught up). */
  async update(p: Principal, id: string, dto: UpdateScheduleRequestDto): Promise<Schedule> {
    const updated = await this.store.modify(id, ownerScope(p), (current, now) => {
      const patch: SchedulePatch = {};
      if (dto.cron !== undefined || dto.timezone !== undefined) {
        const cron = CronExpression.parse(dto.cron ?? current.cron, dto.timezone ?? current.timezone);
        patch.cron = cron.expression;
        patch.timezone = cron.timezone;
        patch.nextRunAt = this.next(cron, now);
      }
      if (dto.paused !== undefined) {
        patch.paused = dto.paused;
        if (current.paused && !dto.paused)
          patch.nextRunAt ??= this.next(CronExpression.parse(current.cron, current.timezone), now);
      }
      if (dto.overlap !== undefined) patch.overlap = dto.overlap;
      if (dto.task !== undefined) patch.task = this.mergedTask(current.task, dto.task);
      return patch;
    });
    if (!updated) throw new ScheduleNotFoundError(id);
    return updated;
  }

  async delete(p: Principal, id: string): Promise<void> {
    if (!(await this.store.delete(id, ownerScope(p)))) throw new ScheduleNotFoundError(id);
  }

  /** The task every fire submits, checked as POST /v1/tasks checks it, with the type's defaults filled in. */
  private taskSpec(dto: ScheduleTaskRequestDto): ScheduledTaskSpec {
    const { payload, definition } = this.tasks.check(dto, 'task.');
    return {
      type: dto.type,
      payload,
      priority: dto.priority ?? 0,
      maxAttempts: dto.maxAttempts ?? definition.maxAttempts,
      timeoutMs: dto.timeoutMs ?? definition.timeoutMs,
    };
  }

  /** The fields given replace the current ones; a new type brings its own defaults unless they are given. */
  private mergedTask(current: ScheduledTaskSpec, dto: UpdateScheduleTaskRequestDto): ScheduledTaskSpec {
    const sameType = dto.type === undefined || dto.type === current.type;
    return this.taskSpec({
      type: dto.type ?? current.type,
      payload: dto.payload !== undefined ? dto.payload : current.payload,
      priority: dto.priority ?? current.priority,
      maxAttempts: dto.maxAttempts ?? (sameType ? current.maxAttempts : undefined),
      timeoutMs: dto.timeoutMs ?? (sameType ? current.timeoutMs : undefined),
    });
  }

  private next(cron: CronExpression, after: Date): Date {
    const next = cron.nextAfter(after);
    if (!next) throw new RequestValidationError('cron', 'cron never matches a date');
    return next;
  }
}
