import {
  Body,
  Controller,
  Get,
  HttpCode,
  type MessageEvent,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  Sse,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiQuery,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { continueTrace } from '@tasksys/platform';
import { type Principal, StreamTokens, type Task, TaskQueries, TaskReports, WorkerFleetQuery } from '@tasksys/tasks';
import { AcceptsStreamToken, CurrentPrincipal } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { TaskStreamService } from './task-stream.service';
import { CreateReportRequestDto, CreateTaskBatchRequestDto, CreateTaskRequestDto, ListTasksQueryDto } from './task.dto';
import {
  ReportView,
  StreamTokenView,
  TaskEventListView,
  TaskListView,
  TaskPageView,
  TaskView,
  toEventView,
  toReportView,
  toTaskView,
} from './task.views';
import { TasksService } from './tasks.service';

const uuid = new ParseUUIDPipe({ exceptionFactory: () => new RequestValidationError('id', 'id must be a UUID') });

@ApiTags('tasks')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiTooManyRequestsResponse({ description: 'Rate limit of this key exceeded; see Retry-After (seconds)' })
@Controller('v1/tasks')
export class TasksController {
  constructor(
    private readonly tasks: TasksService,
    private readonly queries: TaskQueries,
    private readonly reports: TaskReports,
    private readonly streams: TaskStreamService,
    private readonly fleet: WorkerFleetQuery,
    private readonly streamTokens: StreamTokens,
  ) {}

  /** Views of tasks, a queued one saying why it waits when no live worker serves its type. */
  private async view(task: Task): Promise<TaskView> {
    return task.status === 'queued' ? toTaskView(task, await this.fleet.servedTypes()) : toTaskView(task);
  }

  private async views(tasks: Task[]): Promise<TaskView[]> {
    const served = tasks.some((t) => t.status === 'queued') ? await this.fleet.servedTypes() : undefined;
    return tasks.map((t) => toTaskView(t, served));
  }

  @Post()
  @ApiOperation({ summary: 'Submit a task (queued at once unless start is false)' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Retries with the same key and body return the same task (200); another body is 409',
  })
  @ApiCreatedResponse({ type: TaskView, description: 'Created' })
  @ApiOkResponse({ type: TaskView, description: 'Same Idempotency-Key and body as an earlier request: that task' })
  @ApiBadRequestResponse({ description: 'Unknown type, bad payload or unknown field; the message names the field' })
  @ApiConflictResponse({ description: 'Idempotency-Key already used with another body' })
  @ApiPayloadTooLargeResponse({ description: 'Body over BODY_LIMIT' })
  @ApiTooManyRequestsResponse({
    description:
      'Rate limit of this key exceeded, or the owner is at its maxQueued (code OWNER.MAX_QUEUED, nothing written); see Retry-After (seconds)',
  })
  async create(
    @CurrentPrincipal() p: Principal,
    @Body() dto: CreateTaskRequestDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<TaskView> {
    // Read from the request, not with @Headers(): that decorator declares the header a second time, as required.
    const idempotencyKey = req.headers['idempotency-key'];
    const { created, task } = await this.tasks.create(
      p,
      dto,
      req.body,
      Array.isArray(idempotencyKey) ? idempotencyKey[0] : idempotencyKey,
      continueTrace(req.headers['traceparent']),
    );
    res.status(created ? 201 : 200);
    return this.view(task);
  }

  @Post('batch')
  @ApiOperation({ summary: 'Submit up to 1000 tasks at once, all or nothing' })
  @ApiCreatedResponse({ type: TaskListView, description: 'Created, in request order' })
  @ApiBadRequestResponse({
    description: 'The first bad item, named by index and field (`tasks[3].payload.ms`); nothing was written',
  })
  @ApiTooManyRequestsResponse({
    description:
      'Rate limit of this key exceeded, or the batch would take the owner past its maxQueued (code OWNER.MAX_QUEUED): nothing was written; see Retry-After (seconds)',
  })
  async createBatch(
    @CurrentPrincipal() p: Principal,
    @Body() dto: CreateTaskBatchRequestDto,
    @Req() req: FastifyRequest,
  ): Promise<TaskListView> {
    return {
      items: await this.views(await this.tasks.createBatch(p, dto.tasks, continueTrace(req.headers['traceparent']))),
    };
  }

  @Get()
  @ApiOperation({ summary: 'List your tasks, newest first (admins: everyone’s, or one owner’s)' })
  @ApiOkResponse({ type: TaskPageView })
  async list(@CurrentPrincipal() p: Principal, @Query() q: ListTasksQueryDto): Promise<TaskPageView> {
    if (q.owner !== undefined && p.role !== 'admin')
      throw new RequestValidationError('owner', 'owner: only admins may list other owners’ tasks');
    const page = await this.queries.list({
      owner: p.role === 'admin' ? (q.owner ?? null) : p.owner,
      status: q.status,
      type: q.type,
      scheduleId: q.scheduleId,
      limit: q.limit ?? 20,
      cursor: q.cursor,
    });
    return { items: await this.views(page.items), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One task' })
  @ApiOkResponse({ type: TaskView })
  @ApiNotFoundResponse({ description: 'No such task, or not yours' })
  async get(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<TaskView> {
    return this.view(await this.tasks.get(p, id));
  }

  @Post(':id/start')
  @HttpCode(202)
  @ApiOperation({ summary: 'Queue a task created with start: false (new -> queued)' })
  @ApiAcceptedResponse({ type: TaskView })
  @ApiConflictResponse({ description: 'Not allowed from the current status (named in the message)' })
  @ApiNotFoundResponse()
  async start(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<TaskView> {
    return this.view(await this.tasks.act(p, id, 'start'));
  }

  @Post(':id/cancel')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel a task that has not finished; a running one is signalled to stop' })
  @ApiAcceptedResponse({ type: TaskView })
  @ApiConflictResponse({ description: 'Already succeeded or failed' })
  @ApiNotFoundResponse()
  async cancel(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<TaskView> {
    return this.view(await this.tasks.act(p, id, 'cancel'));
  }

  @Post(':id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a failed or cancelled task again, with a fresh attempt budget' })
  @ApiAcceptedResponse({ type: TaskView })
  @ApiConflictResponse({ description: 'Not failed or cancelled (the current status is named)' })
  @ApiNotFoundResponse()
  async retry(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<TaskView> {
    return this.view(await this.tasks.act(p, id, 'retry'));
  }

  @Get(':id/events')
  @ApiOperation({ summary: 'The transition log of a task, oldest first' })
  @ApiOkResponse({ type: TaskEventListView })
  @ApiNotFoundResponse()
  async events(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<TaskEventListView> {
    await this.tasks.get(p, id);
    return { items: (await this.queries.events(id)).map(toEventView) };
  }

  @Sse(':id/stream')
  @AcceptsStreamToken()
  @ApiOperation({
    summary: 'Live status and progress (Server-Sent Events), resumable with Last-Event-ID',
    description:
      'Every event has an `id:` that orders all of the task’s events. First event: `status` with the current task. Then `status` ' +
      '(the whole task) on each state change and `progress` ({id, percent, message}). A client that reconnects with ' +
      '`Last-Event-ID` gets exactly the events after that id (replayed from the database: none repeated, none missed), then live ones. ' +
      'Closed after the terminal status. Comment lines (`: heartbeat`) keep idle connections open. Browsers (EventSource) pass ' +
      '`?token=` from POST /v1/tasks/:id/stream-token instead of the Authorization header.',
  })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'The `id:` of the last event received' })
  @ApiQuery({
    name: 'token',
    required: false,
    description: 'A stream token of this task (POST /v1/tasks/:id/stream-token), instead of the Authorization header',
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'An event stream', schema: { type: 'string' } })
  @ApiBadRequestResponse({ description: 'Last-Event-ID is not an event id' })
  @ApiNotFoundResponse()
  async stream(
    @CurrentPrincipal() p: Principal,
    @Param('id', uuid) id: string,
    @Req() req: FastifyRequest,
  ): Promise<Observable<MessageEvent>> {
    // Read from the request, not @Headers(): the header is declared once, by @ApiHeader above.
    const header = req.headers['last-event-id'];
    const lastEventId = Array.isArray(header) ? header[0] : header;
    if (lastEventId !== undefined && !/^\d{1,18}$/.test(lastEventId.trim()))
      throw new RequestValidationError(
        'Last-Event-ID',
        'Last-Event-ID must be the id of an event of this stream (digits)',
      );
    await this.tasks.get(p, id);
    return this.streams.stream(id, lastEventId?.trim());
  }

  @Post(':id/stream-token')
  @ApiOperation({
    summary: 'A short-lived token that opens this task’s stream without the Authorization header (EventSource)',
    description: 'Valid 5 minutes, for this task only, as `GET /v1/tasks/:id/stream?token=...`.',
  })
  @ApiCreatedResponse({ type: StreamTokenView })
  @ApiNotFoundResponse()
  async streamToken(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<StreamTokenView> {
    const task = await this.tasks.get(p, id);
    const issued = await this.streamTokens.issue(task.id, p);
    return { token: issued.token, expiresAt: issued.expiresAt.toISOString() };
  }

  @Post(':id/reports')
  @ApiOperation({ summary: 'Report a problem with one of your tasks (listed for admins)' })
  @ApiCreatedResponse({ type: ReportView })
  @ApiNotFoundResponse()
  async report(
    @CurrentPrincipal() p: Principal,
    @Param('id', uuid) id: string,
    @Body() dto: CreateReportRequestDto,
  ): Promise<ReportView> {
    const task = await this.tasks.get(p, id);
    return toReportView(await this.reports.create(task.id, p.owner, dto.message));
  }
}
