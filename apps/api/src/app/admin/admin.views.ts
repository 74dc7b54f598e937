import { ApiProperty } from '@nestjs/swagger';
import type { BrowsedMessage, QueueStats } from '@tasksys/messaging';
import { ERROR_CODES } from '@tasksys/platform';
import type { WorkerStatus } from '@tasksys/tasks';

export class QueueView {
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['work', 'retry', 'dead', 'unrouted'] }) role!: QueueStats['role'];
  @ApiProperty({ type: String, nullable: true, description: 'Work queues: the task type whose work waits there' })
  type!: string | null;
  @ApiProperty({
    description: 'False for the work queue of a type no worker has served yet (its messages go to unrouted)',
  })
  exists!: boolean;
  @ApiProperty({ description: 'ready + unacked' }) messages!: number;
  @ApiProperty() ready!: number;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'null when the management API is not reachable (AMQP cannot tell)',
  })
  unacked!: number | null;
  @ApiProperty() consumers!: number;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Age of the oldest ready message in ms (management API only)',
  })
  oldestMessageAgeMs!: number | null;
}

export class QueueListView {
  @ApiProperty({ enum: ['management', 'amqp'], description: 'Where the figures come from' }) source!:
    | 'management'
    | 'amqp';
  @ApiProperty({ format: 'date-time' }) at!: string;
  @ApiProperty({ type: [QueueView] }) items!: QueueView[];
}

export class BrokerMessageView {
  @ApiProperty({ type: String, nullable: true }) messageId!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'The task the message is for; of a bundle, its first (see taskIds)',
  })
  taskId!: string | null;
  @ApiProperty({
    type: [String],
    format: 'uuid',
    description: 'Every task the message carries: several for a bundle `{v: 2, type, taskIds}`, else [taskId] or []',
  })
  taskIds!: string[];
  @ApiProperty({ type: String, nullable: true }) type!: string | null;
  @ApiProperty() routingKey!: string;
  @ApiProperty({ type: String, nullable: true, example: ERROR_CODES.TASK_ABANDONED }) reasonCode!: string | null;
  @ApiProperty({ type: String, nullable: true }) reason!: string | null;
  @ApiProperty({ type: String, nullable: true }) deadLetteredAt!: string | null;
  @ApiProperty({ description: 'Not a work message (`{v: 1, taskId, type}` or a bundle `{v: 2, type, taskIds}`)' })
  malformed!: boolean;
  @ApiProperty() redelivered!: boolean;
  @ApiProperty({ description: 'At most 2 KB of the body' }) body!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) headers!: Record<string, unknown>;
}

export class BrokerMessageListView {
  @ApiProperty() queue!: string;
  @ApiProperty({ description: 'Messages in the queue (ready), which may be more than listed' }) total!: number;
  @ApiProperty({ type: [BrokerMessageView] }) items!: BrokerMessageView[];
}

export class DeadLetterRedriveView {
  @ApiProperty({ description: 'Tasks returned to queued (work message via the outbox); their dead letters removed' })
  redriven!: number;
  @ApiProperty({
    description:
      'Dead letters of tasks still queued, retrying or running: a new work message went through the outbox first, then removed',
  })
  requeued!: number;
  @ApiProperty({ description: 'Dead letters of tasks that succeeded (or are not started yet): removed' })
  stale!: number;
  @ApiProperty({ description: 'Left in place: not chosen, or malformed' }) skipped!: number;
  @ApiProperty({
    description: 'Left in place: of a task no longer in the database (deleted by retention, TASK_RETENTION_MS)',
  })
  missing!: number;
  @ApiProperty({ description: 'Malformed dead letters removed (purgeMalformed)' }) purged!: number;
}

export class UnroutedRedriveView {
  @ApiProperty({ description: 'Republished to the work exchange (confirmed), then removed' }) redriven!: number;
  @ApiProperty({ description: 'Left in place' }) skipped!: number;
  @ApiProperty({ type: String, nullable: true, description: 'Why publishing stopped, if it did' }) error!:
    | string
    | null;
}

export class WorkerView {
  @ApiProperty() id!: string;
  @ApiProperty() host!: string;
  @ApiProperty() pid!: number;
  @ApiProperty() concurrency!: number;
  @ApiProperty() inFlight!: number;
  @ApiProperty({ format: 'date-time' }) startedAt!: string;
  @ApiProperty({ format: 'date-time' }) lastSeenAt!: string;
  @ApiProperty({ format: 'date-time', type: String, nullable: true }) stoppedAt!: string | null;
  @ApiProperty({ description: 'Heartbeat within 15 s and not stopped' }) alive!: boolean;
}

export class WorkerFleetView {
  @ApiProperty({ description: 'WORKERS_EXPECTED' }) expected!: number;
  @ApiProperty() alive!: number;
  @ApiProperty({ type: [WorkerView] }) workers!: WorkerView[];
}

export class ReconcileView {
  @ApiProperty({ description: 'running with an expired lease' }) running!: number;
  @ApiProperty({ description: 'retrying past its due time' }) retrying!: number;
  @ApiProperty({ description: 'queued for longer than olderThanMs' }) queued!: number;
  @ApiProperty() total!: number;
}

export function toQueueView(q: QueueStats): QueueView {
  return {
    name: q.name,
    role: q.role,
    type: q.type ?? null,
    exists: q.exists,
    messages: q.messages,
    ready: q.ready,
    unacked: q.unacked,
    consumers: q.consumers,
    oldestMessageAgeMs: q.oldestMessageAgeMs,
  };
}

export function toBrokerMessageView(m: BrowsedMessage): BrokerMessageView {
  return { ...m };
}

export function toWorkerView(w: WorkerStatus): WorkerView {
  return {
    id: w.id,
    host: w.host,
    pid: w.pid,
    concurrency: w.concurrency,
    inFlight: w.inFlight,
    startedAt: w.startedAt.toISOString(),
    lastSeenAt: w.lastSeenAt.toISOString(),
    stoppedAt: w.stoppedAt ? w.stoppedAt.toISOString() : null,
    alive: w.alive,
  };
}
