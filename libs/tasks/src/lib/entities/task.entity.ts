import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { TaskStatus } from '../task-status';

export interface TaskError {
  code: string;
  message: string;
  retryable?: boolean;
}

/** A unit of work and the single source of truth about it. Written only through TaskStateMachine. */
@Entity({ name: 'tasks' })
export class Task {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') owner!: string;
  @Column('text') type!: string;
  @Column('jsonb') payload!: unknown;
  @Column('text') status!: TaskStatus;
  /** Incremented by every claim; the fencing token of the run that holds the lease. */
  @Column('int') attempt!: number;
  /** Claims that do not count against maxAttempts (graceful hand-overs, runs before a manual retry). */
  @Column('int', { name: 'attempt_base' }) attemptBase!: number;
  @Column('int', { name: 'max_attempts' }) maxAttempts!: number;
  @Column('int', { name: 'timeout_ms' }) timeoutMs!: number;
  @Column('smallint') priority!: number;
  @Column('text', { name: 'lease_owner', nullable: true }) leaseOwner!: string | null;
  @Column('timestamptz', { name: 'lease_expires_at', nullable: true }) leaseExpiresAt!: Date | null;
  @Column('timestamptz', { name: 'run_after', nullable: true }) runAfter!: Date | null;
  /** When the submitter asked it to start (`runAt` / `delayMs`); it waits as `scheduled` until then. Null: at once. */
  @Column('timestamptz', { name: 'run_at', nullable: true }) runAt!: Date | null;
  /** Set while the claim holds it back because its owner is at maxRunning; its owner's next free slot wakes it. */
  @Column('timestamptz', { name: 'held_since', nullable: true }) heldSince!: Date | null;
  /** Why it is held, naming the limit (`owner acme is at maxRunning 2`). */
  @Column('text', { name: 'held_reason', nullable: true }) heldReason!: string | null;
  /** The cron schedule that fired it, and the fire time it was fired for: unique together (one task per fire). */
  @Column('uuid', { name: 'schedule_id', nullable: true }) scheduleId!: string | null;
  @Column('timestamptz', { name: 'scheduled_for', nullable: true }) scheduledFor!: Date | null;
  @Column('smallint', { name: 'progress_percent' }) progressPercent!: number;
  @Column('text', { name: 'progress_message', nullable: true }) progressMessage!: string | null;
  @Column('jsonb', { nullable: true }) result!: unknown;
  @Column('jsonb', { nullable: true }) error!: TaskError | null;
  @Column('text', { name: 'idempotency_key', nullable: true }) idempotencyKey!: string | null;
  @Column('text', { name: 'request_hash', nullable: true }) requestHash!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'started_at', nullable: true }) startedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  /** Where the completion webhook goes (libs/tasks/src/lib/webhooks/); null: none. */
  @Column('text', { name: 'callback_url', nullable: true }) callbackUrl!: string | null;
}
