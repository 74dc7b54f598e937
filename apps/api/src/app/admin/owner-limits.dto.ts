import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

/** Highest limit accepted: far above any real fleet, low enough that a typo (an extra zero or two) is not silently "unlimited". */
export const MAX_OWNER_LIMIT = 1_000_000;

const limitMessage = (field: string) =>
  `${field} must be an integer from 1 to ${MAX_OWNER_LIMIT}, or null to remove the limit`;

/** `PUT /v1/admin/owners/:owner/limits`: a field left out stays as it is; null removes that limit. */
export class OwnerLimitsRequestDto {
  @ApiPropertyOptional({
    type: 'integer',
    nullable: true,
    minimum: 1,
    maximum: MAX_OWNER_LIMIT,
    description:
      'Most of the owner’s tasks running at once across all workers; more wait as `queued`, held (see a task’s `waiting`). ' +
      'Null: no limit. Left out: unchanged',
  })
  @IsOptional()
  @IsInt({ message: limitMessage('maxRunning') })
  @Min(1, { message: limitMessage('maxRunning') })
  @Max(MAX_OWNER_LIMIT, { message: limitMessage('maxRunning') })
  maxRunning?: number | null;

  @ApiPropertyOptional({
    type: 'integer',
    nullable: true,
    minimum: 1,
    maximum: MAX_OWNER_LIMIT,
    description:
      'Most non-terminal tasks (new, scheduled, queued, retrying, running) the owner may have; a submit past it answers 429 ' +
      'with Retry-After and writes nothing. Null: no limit. Left out: unchanged',
  })
  @IsOptional()
  @IsInt({ message: limitMessage('maxQueued') })
  @Min(1, { message: limitMessage('maxQueued') })
  @Max(MAX_OWNER_LIMIT, { message: limitMessage('maxQueued') })
  maxQueued?: number | null;
}

export class OwnerLimitsView {
  @ApiProperty() owner!: string;
  @ApiProperty({ type: 'integer', nullable: true, description: 'Null: unlimited' }) maxRunning!: number | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'Null: unlimited' }) maxQueued!: number | null;
  @ApiProperty({ description: 'Its tasks running now (what maxRunning bounds)' }) running!: number;
  @ApiProperty({
    description: 'Its non-terminal tasks: new, scheduled, queued, retrying, running (what maxQueued bounds)',
  })
  queued!: number;
  @ApiProperty({ description: 'Its tasks held back by maxRunning, waiting for a slot' }) held!: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'Last set; null: no limits' })
  updatedAt!: string | null;
}

export class OwnerLimitsUpdateView extends OwnerLimitsView {
  @ApiProperty({ description: 'Held tasks this change set free (a raised or removed maxRunning)' }) woken!: number;
}
