import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A user's problem report about one of their tasks ("submit a ticket"). */
@Entity({ name: 'task_reports' })
export class TaskReport {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'task_id' }) taskId!: string;
  @Column('text') owner!: string;
  @Column('text') message!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}
