import { Column, Entity, PrimaryColumn } from 'typeorm';

/** @internal A worker process of the fleet, registered at start and heart-beating while alive. */
@Entity({ name: 'workers' })
export class Worker {
  @PrimaryColumn('text') id!: string;
  @Column('text') host!: string;
  @Column('int') pid!: number;
  @Column('int') concurrency!: number;
  @Column('int', { name: 'in_flight' }) inFlight!: number;
  @Column('timestamptz', { name: 'started_at' }) startedAt!: Date;
  @Column('timestamptz', { name: 'last_seen_at' }) lastSeenAt!: Date;
  @Column('timestamptz', { name: 'stopped_at', nullable: true }) stoppedAt!: Date | null;
  /** The task types this worker serves (its work queues). */
  @Column('text', { name: 'task_types', array: true }) taskTypes!: string[];
}
