import { Column, Entity, PrimaryColumn } from 'typeorm';

/** @internal A message to publish, written in the transaction of the state change that needs it. Deleted once confirmed. */
@Entity({ name: 'outbox' })
export class OutboxMessage {
  @PrimaryColumn('bigint') id!: string;
  /** Logical exchange role (`work`, `control`, ...); the relay maps it to the namespaced exchange. */
  @Column('text') exchange!: string;
  @Column('text', { name: 'routing_key' }) routingKey!: string;
  @Column('uuid', { name: 'message_id' }) messageId!: string;
  @Column('text', { name: 'correlation_id', nullable: true }) correlationId!: string | null;
  @Column('jsonb') body!: unknown;
  @Column('jsonb') headers!: Record<string, unknown>;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('int', { name: 'publish_attempts' }) publishAttempts!: number;
  @Column('text', { name: 'last_error', nullable: true }) lastError!: string | null;
  /** The task's priority, published as the message priority. */
  @Column('smallint') priority!: number;
}
