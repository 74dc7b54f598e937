import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { TaskStatus } from '../task-status';
import type { TaskError } from './task.entity';

/** @internal Append-only log: one row per applied transition, written in the same statement as the transition. */
@Entity({ name: 'task_events' })
export class TaskEvent {
  /** The primary key is (task_id, id): every read is by task (migration 1764700000000). */
  @PrimaryColumn('uuid', { name: 'task_id' }) taskId!: string;
  @PrimaryColumn('bigint') id!: string;
  @Column('timestamptz') at!: Date;
  @Column('text', { name: 'from_status', nullable: true }) fromStatus!: TaskStatus | null;
  @Column('text', { name: 'to_status' }) toStatus!: TaskStatus;
  @Column('int') attempt!: number;
  /** Who caused it: a worker id, `owner:<name>`, `admin:<name>` or `system:<job>`. */
  @Column('text') actor!: string;
  @Column('jsonb', { nullable: true }) error!: TaskError | null;
}
