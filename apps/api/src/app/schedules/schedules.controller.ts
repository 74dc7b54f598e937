import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Principal } from '@tasksys/tasks';
import { CurrentPrincipal } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { CreateScheduleRequestDto, ListSchedulesQueryDto, UpdateScheduleRequestDto } from './schedule.dto';
import { SchedulePageView, ScheduleView, toScheduleView } from './schedule.views';
import { SchedulesService } from './schedules.service';

const uuid = new ParseUUIDPipe({ exceptionFactory: () => new RequestValidationError('id', 'id must be a UUID') });

@ApiTags('schedules')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiTooManyRequestsResponse({ description: 'Rate limit of this key exceeded; see Retry-After (seconds)' })
@Controller('v1/schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a cron schedule: each fire time creates one task (its runs: GET /v1/tasks?scheduleId=)',
  })
  @ApiCreatedResponse({ type: ScheduleView, description: 'Created, with its id and first fire time (nextRunAt)' })
  @ApiBadRequestResponse({
    description:
      'Bad cron, unknown time zone, unknown task type, bad payload: the message names the field (`cron`, `timezone`, `task.type`, `task.payload.ms`)',
  })
  @ApiConflictResponse({ description: 'You have a schedule of that name already' })
  async create(@CurrentPrincipal() p: Principal, @Body() dto: CreateScheduleRequestDto): Promise<ScheduleView> {
    return toScheduleView(await this.schedules.create(p, dto));
  }

  @Get()
  @ApiOperation({ summary: 'List your schedules, newest first (admins: everyone’s, or one owner’s)' })
  @ApiOkResponse({ type: SchedulePageView })
  @ApiBadRequestResponse({ description: 'Bad limit or cursor; owner given by a non-admin' })
  async list(@CurrentPrincipal() p: Principal, @Query() q: ListSchedulesQueryDto): Promise<SchedulePageView> {
    const page = await this.schedules.list(p, q);
    return { items: page.items.map(toScheduleView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One schedule, with its next and last fire and its skipped and missed counts' })
  @ApiOkResponse({ type: ScheduleView })
  @ApiNotFoundResponse({ description: 'No such schedule, or not yours' })
  async get(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<ScheduleView> {
    return toScheduleView(await this.schedules.get(p, id));
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Pause or resume, change the cron (or zone), the task or the overlap policy',
    description:
      'A new cron or zone, or a resume, sets nextRunAt to the first fire time after now. `task` fields given replace the current ones, and the result is validated as a submit',
  })
  @ApiOkResponse({ type: ScheduleView })
  @ApiBadRequestResponse({ description: 'The message names the field' })
  @ApiNotFoundResponse({ description: 'No such schedule, or not yours' })
  async update(
    @CurrentPrincipal() p: Principal,
    @Param('id', uuid) id: string,
    @Body() dto: UpdateScheduleRequestDto,
  ): Promise<ScheduleView> {
    return toScheduleView(await this.schedules.update(p, id, dto));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a schedule: no more fires; the tasks it created stay' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiNotFoundResponse({ description: 'No such schedule, or not yours' })
  async delete(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<void> {
    await this.schedules.delete(p, id);
  }
}
