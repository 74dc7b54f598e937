import { ApiProperty } from '@nestjs/swagger';
import type { Schedule } from '@tasksys/tasks';
import { OVERLAP_POLICIES } from './schedule.dto';

export class ScheduledTaskView {
  @ApiProperty() type!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) payload!: unknown;
  @ApiProperty({ minimum: 0, maximum: 9 }) priority!: number;
  @ApiProperty({ description: "The type's default when not given" }) maxAttempts!: number;
  @ApiProperty({ description: "The type's default when not given" }) timeoutMs!: number;
}

/** The public JSON of a cron schedule. */
export class ScheduleView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() owner!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: '0 3 * * *' }) cron!: string;
  @ApiProperty({ example: 'Europe/Berlin' }) timezone!: string;
  @ApiProperty({ type: ScheduledTaskView }) task!: ScheduledTaskView;
  @ApiProperty({ enum: OVERLAP_POLICIES }) overlap!: (typeof OVERLAP_POLICIES)[number];
  @ApiProperty() paused!: boolean;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'The next fire time; null while paused',
  })
  nextRunAt!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'The latest fire time that created a task',
  })
  lastFiredAt!: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The task of that fire' })
  lastTaskId!: string | null;
  @ApiProperty({ description: 'Tasks created by its fires' }) firedCount!: number;
  @ApiProperty({ description: 'Fire times skipped by `overlap: skip`' }) skippedCount!: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastSkippedAt!: string | null;
  @ApiProperty({
    description: 'Fire times passed over by the missed-fire policy while nothing could fire (see README)',
  })
  missedCount!: number;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

export class SchedulePageView {
  @ApiProperty({ type: [ScheduleView] }) items!: ScheduleView[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next (older) page' })
  nextCursor!: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toScheduleView(s: Schedule): ScheduleView {
  return {
    id: s.id,
    owner: s.owner,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    task: { ...s.task },
    overlap: s.overlap,
    paused: s.paused,
    nextRunAt: s.paused ? null : s.nextRunAt.toISOString(),
    lastFiredAt: iso(s.lastFiredAt),
    lastTaskId: s.lastTaskId,
    firedCount: s.firedCount,
    skippedCount: s.skippedCount,
    lastSkippedAt: iso(s.lastSkippedAt),
    missedCount: s.missedCount,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}
