import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { MAX_TIMEOUT_MS, PageQueryDto } from '../tasks/task.dto';

export const OVERLAP_POLICIES = ['allow', 'skip'] as const;

/** What each fire submits: the fields of POST /v1/tasks that a schedule may set. */
export class ScheduleTaskRequestDto {
  @ApiProperty({ description: 'A registered task type', example: 'demo.sleep' })
  @IsString()
  @Length(1, 100)
  type!: string;

  @ApiProperty({
    description: "The type's payload, validated as a submit's is (errors name the field, e.g. `task.payload.ms`)",
    type: 'object',
    additionalProperties: true,
    example: { ms: 1000 },
  })
  @IsDefined()
  payload!: unknown;

  @ApiPropertyOptional({ minimum: 0, maximum: 9, default: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(9)
  priority?: number;

  @ApiPropertyOptional({ description: "Default: the type's", minimum: 1, maximum: 100 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  maxAttempts?: number;

  @ApiPropertyOptional({ description: "Default: the type's", minimum: 1, maximum: MAX_TIMEOUT_MS })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TIMEOUT_MS)
  timeoutMs?: number;
}

/** A PATCH of the task: the fields given replace the schedule's, the rest stay; the result is validated whole. */
export class UpdateScheduleTaskRequestDto {
  @ApiPropertyOptional({ example: 'demo.sleep' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  type?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsDefined()
  payload?: unknown;

  @ApiPropertyOptional({ minimum: 0, maximum: 9 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(9)
  priority?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 100 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  maxAttempts?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_TIMEOUT_MS })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TIMEOUT_MS)
  timeoutMs?: number;
}

const CRON_DESCRIPTION =
  '5 fields (`minute hour day-of-month month day-of-week`) or 6 with seconds first (`*/10 * * * * *`); ' +
  'day-of-month and day-of-week combine with OR, as in Vixie cron';

export class CreateScheduleRequestDto {
  @ApiProperty({ description: 'Unique among your schedules', example: 'nightly-report', minLength: 1, maxLength: 100 })
  @IsString()
  @Length(1, 100)
  @Matches(/^\P{Cc}+$/u, { message: 'name must not contain control characters' })
  name!: string;

  @ApiProperty({ description: CRON_DESCRIPTION, example: '0 3 * * *' })
  @IsString()
  @Length(1, 200)
  cron!: string;

  @ApiPropertyOptional({ description: 'IANA time zone the cron is read in', default: 'UTC', example: 'Europe/Berlin' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  timezone?: string;

  @ApiProperty({ type: ScheduleTaskRequestDto })
  @IsObject()
  @ValidateNested()
  @Type(() => ScheduleTaskRequestDto)
  task!: ScheduleTaskRequestDto;

  @ApiPropertyOptional({
    enum: OVERLAP_POLICIES,
    default: 'allow',
    description:
      '`skip`: no task for a fire time while the previous task of the schedule has not finished (counted as skipped)',
  })
  @IsOptional()
  @IsIn(OVERLAP_POLICIES)
  overlap?: (typeof OVERLAP_POLICIES)[number];
}

export class UpdateScheduleRequestDto {
  @ApiPropertyOptional({
    description: 'Paused: no fires. Resumed: the next fire time after now (paused slots are not caught up)',
  })
  @IsOptional()
  @IsBoolean()
  paused?: boolean;

  @ApiPropertyOptional({ description: `${CRON_DESCRIPTION}. Recomputes nextRunAt from now` })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cron?: string;

  @ApiPropertyOptional({ description: 'IANA time zone; recomputes nextRunAt from now', example: 'Europe/Berlin' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  timezone?: string;

  @ApiPropertyOptional({ type: UpdateScheduleTaskRequestDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => UpdateScheduleTaskRequestDto)
  task?: UpdateScheduleTaskRequestDto;

  @ApiPropertyOptional({ enum: OVERLAP_POLICIES })
  @IsOptional()
  @IsIn(OVERLAP_POLICIES)
  overlap?: (typeof OVERLAP_POLICIES)[number];
}

export class ListSchedulesQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Admins only: one owner (default: every owner)' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  owner?: string;
}
