import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ApiKeyRole = 'user' | 'admin';

/** @internal An API key; only its SHA-256 is stored. */
@Entity({ name: 'api_keys' })
export class ApiKey {
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'key_hash' }) keyHash!: string;
  @Column('text') owner!: string;
  @Column('text') role!: ApiKeyRole;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
}
