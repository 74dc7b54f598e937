import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';
import { MAX_BROWSE } from '@tasksys/messaging';

export class BrowseQueryDto {
  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_BROWSE,
    default: 50,
    description: 'Messages from the head of the queue (they stay there)',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_BROWSE)
  limit?: number;
}

export class RedriveRequestDto {
  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    description: 'Only messages of these tasks (default: all)',
    maxItems: MAX_BROWSE,
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_BROWSE)
  @IsUUID('all', { each: true, message: 'taskIds must hold UUIDs' })
  taskIds?: string[];

  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_BROWSE,
    default: MAX_BROWSE,
    description: 'Most messages looked at in this call',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_BROWSE)
  limit?: number;
}

export class RedriveDeadLettersRequestDto extends RedriveRequestDto {
  @ApiPropertyOptional({
    default: false,
    description: 'Remove dead letters that are not task messages (they stay otherwise); ignored with taskIds',
  })
  @IsOptional()
  @IsBoolean()
  purgeMalformed?: boolean;
}

export class ReconcileRequestDto {
  @ApiPropertyOptional({
    minimum: 0,
    default: 60_000,
    description: 'Queued tasks untouched for this long get a new work message',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(30 * 86_400_000)
  olderThanMs?: number;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 100_000,
    default: 10_000,
    description: 'Most tasks per state in one call',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100_000)
  limit?: number;
}
