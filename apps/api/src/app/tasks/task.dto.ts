import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { TASK_STATUSES, type TaskStatus } from '@tasksys/tasks';

export const MAX_BATCH = 1000;
export const MAX_TIMEOUT_MS = 86_400_000;
/** Furthest a task may be scheduled ahead (`runAt`, `delayMs`): a year. */
export const MAX_DELAY_MS = 366 * 86_400_000;

export class CreateTaskRequestDto {
  @ApiProperty({ description: 'A registered task type', example: 'demo.sleep' })
  @IsString()
  @Length(1, 100)
  type!: string;

  @ApiProperty({
    description: "The type's payload, validated against its schema (errors name the field, e.g. `payload.ms`)",
    type: 'object',
    additionalProperties: true,
    example: { ms: 5000, steps: 10 },
  })
  @IsDefined()
  payload!: unknown;

  @ApiPropertyOptional({
    description: 'Queue it right away (`queued`) or leave it `new` until POST /start',
    default: true,
  })
  @IsOptional()
  @IsBoolean()
  start?: boolean;

  @ApiPropertyOptional({ description: "Runs before it fails for good (default: the type's)", minimum: 1, maximum: 100 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  maxAttempts?: number;

  @ApiPropertyOptional({
    description: "Time limit of one run in ms (default: the type's)",
    minimum: 1,
    maximum: MAX_TIMEOUT_MS,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TIMEOUT_MS)
  timeoutMs?: number;

  @ApiPropertyOptional({
    description: 'Higher runs first where the broker supports it',
    minimum: 0,
    maximum: 9,
    default: 0,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(9)
  priority?: number;

  @ApiPropertyOptional({
    description:
      'Start it at this time (ISO 8601 with an offset, `Z` or `+02:00`; at most a year ahead): until then it is ' +
      '`scheduled`; a time already past starts it at once. Not together with `delayMs`',
    format: 'date-time',
    example: '2026-12-01T22:00:00Z',
  })
  @IsOptional()
  @IsString()
  @MaxLength(40)
  runAt?: string;

  @ApiPropertyOptional({
    description: 'Start it this many ms from now (until then it is `scheduled`). Not together with `runAt`',
    minimum: 0,
    maximum: MAX_DELAY_MS,
    example: 60000,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_DELAY_MS)
  delayMs?: number;

  @ApiPropertyOptional({
    description:
      'Where to POST the task (as GET /v1/tasks/:id shows it) when it ends, signed per Standard Webhooks with the ' +
      'owner’s secret (POST /v1/webhooks/secret first). http or https, no credentials, at most 2048 characters; ' +
      'hosts that are or resolve to loopback, private, link-local or metadata addresses are refused',
    example: 'https://example.com/hooks/tasks',
    maxLength: 2048,
  })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  callbackUrl?: string;
}

export class CreateTaskBatchRequestDto {
  @ApiProperty({ type: [CreateTaskRequestDto], minItems: 1, maxItems: MAX_BATCH })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BATCH)
  @ValidateNested({ each: true })
  @Type(() => CreateTaskRequestDto)
  tasks!: CreateTaskRequestDto[];
}

export class PageQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: '`nextCursor` of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(300)
  cursor?: string;
}

/** Filters of the task list, on top of the page size and cursor. */
export class ListTasksQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @IsOptional()
  @IsIn(TASK_STATUSES)
  status?: TaskStatus;

  @ApiPropertyOptional({ example: 'demo.sleep' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  type?: string;

  @ApiPropertyOptional({ description: 'Admins only: one owner (default: every owner)' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  owner?: string;

  @ApiPropertyOptional({ description: 'Only the runs of this cron schedule', format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'scheduleId must be a UUID' })
  scheduleId?: string;
}

export class CreateReportRequestDto {
  @ApiProperty({ description: 'What went wrong, in the user’s words', minLength: 1, maxLength: 4000 })
  @IsString()
  @Length(1, 4000)
  message!: string;
}

export class CreateApiKeyRequestDto {
  @ApiProperty({ description: 'Owner the key acts as; its tasks are private to it', example: 'alice' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/, {
    message: 'owner must be 1-100 letters, digits, ".", "_", "@" or "-", starting with a letter or digit',
  })
  owner!: string;

  @ApiProperty({ enum: ['user', 'admin'] })
  @IsIn(['user', 'admin'])
  role!: 'user' | 'admin';
}
