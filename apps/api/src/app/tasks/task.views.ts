import { ApiProperty } from '@nestjs/swagger';
import { TASK_STATUSES, type Task, type TaskEventView, type TaskReport, type TaskStatus } from '@tasksys/tasks';

class TaskErrorView {
  @ApiProperty() code!: string;
  @ApiProperty() message!: string;
  @ApiProperty({ required: false }) retryable?: boolean;
}

class ProgressView {
  @ApiProperty({ minimum: 0, maximum: 100 }) percent!: number;
  @ApiProperty({ type: String, nullable: true }) message!: string | null;
}

/** The public JSON of a task. Internal columns (lease, idempotency key, request hash) stay inside. */
export class TaskView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() type!: string;
  @ApiProperty({ enum: TASK_STATUSES }) status!: TaskStatus;
  @ApiProperty({ type: 'object', additionalProperties: true }) payload!: unknown;
  @ApiProperty({ type: 'object', nullable: true, additionalProperties: true, description: 'Set when succeeded' })
  result!: unknown;
  @ApiProperty({ type: TaskErrorView, nullable: true }) error!: TaskErrorView | null;
  @ApiProperty({ description: 'Runs started so far (the fencing token of the current run)' }) attempt!: number;
  @ApiProperty() maxAttempts!: number;
  @ApiProperty({ minimum: 0, maximum: 9, description: '9 starts first among waiting tasks of the same type' })
  priority!: number;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Why a queued task is not running yet when the system knows, e.g. `no worker serves demo.x` or ' +
      '`owner acme is at maxRunning 2` (held back by its owner’s quota until a slot frees); null otherwise',
  })
  waiting!: string | null;
  @ApiProperty({ type: ProgressView }) progress!: ProgressView;
  @ApiProperty() owner!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'When it was asked to start (`runAt` / `delayMs`); it is `scheduled` until then. Null: at once',
  })
  runAt!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) startedAt!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finishedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Where the completion webhook goes; null: none' })
  callbackUrl!: string | null;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'The cron schedule that fired it (GET /v1/schedules/{id}); null for a submitted task',
  })
  scheduleId!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'The fire time it was created for (one task per schedule and fire time); null for a submitted task',
  })
  scheduledFor!: string | null;
}

export class StreamTokenView {
  @ApiProperty({ description: 'Pass as `?token=` to GET /v1/tasks/:id/stream' }) token!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}

export class TaskPageView {
  @ApiProperty({ type: [TaskView] }) items!: TaskView[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next (older) page' })
  nextCursor!: string | null;
}

export class TaskListView {
  @ApiProperty({ type: [TaskView] }) items!: TaskView[];
}

export class TaskEventItemView {
  @ApiProperty() id!: string;
  @ApiProperty({ format: 'date-time' }) at!: string;
  @ApiProperty({ enum: TASK_STATUSES, nullable: true }) from!: TaskStatus | null;
  @ApiProperty({ enum: TASK_STATUSES }) to!: TaskStatus;
  @ApiProperty() attempt!: number;
  @ApiProperty({ description: 'worker id, `owner:<name>`, `admin:<name>` or `system:<job>`' }) actor!: string;
  @ApiProperty({ type: TaskErrorView, nullable: true }) error!: TaskErrorView | null;
}

export class TaskEventListView {
  @ApiProperty({ type: [TaskEventItemView] }) items!: TaskEventItemView[];
}

export class ReportView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) taskId!: string;
  @ApiProperty() owner!: string;
  @ApiProperty() message!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}

export class ReportPageView {
  @ApiProperty({ type: [ReportView] }) items!: ReportView[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class ApiKeyView {
  @ApiProperty({ description: 'The secret: shown once, stored only as its SHA-256' }) key!: string;
  @ApiProperty() owner!: string;
  @ApiProperty({ enum: ['user', 'admin'] }) role!: 'user' | 'admin';
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Why a task that could run does not: held back by its owner's maxRunning, or no live worker serves its type. */
function waitingReason(t: Task, served?: ReadonlySet<string>): string | null {
  if (t.heldSince && (t.status === 'queued' || t.status === 'retrying'))
    return t.heldReason ?? `owner ${t.owner} is at its maxRunning`;
  return t.status === 'queued' && served && !served.has(t.type) ? `no worker serves ${t.type}` : null;
}

/** `served`: the task types live workers serve; a queued task of another type says why it waits. */
export function toTaskView(t: Task, served?: ReadonlySet<string>): TaskView {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    payload: t.payload,
    result: t.result ?? null,
    error: t.error ?? null,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    priority: t.priority,
    waiting: waitingReason(t, served),
    progress: { percent: t.progressPercent, message: t.progressMessage },
    owner: t.owner,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
    runAt: iso(t.runAt),
    startedAt: iso(t.startedAt),
    finishedAt: iso(t.finishedAt),
    callbackUrl: t.callbackUrl ?? null,
    scheduleId: t.scheduleId ?? null,
    scheduledFor: iso(t.scheduledFor ?? null),
  };
}

export function toEventView(e: TaskEventView): TaskEventItemView {
  return { ...e, at: e.at.toISOString() };
}

export function toReportView(r: TaskReport): ReportView {
  return { id: r.id, taskId: r.taskId, owner: r.owner, message: r.message, createdAt: r.createdAt.toISOString() };
}
