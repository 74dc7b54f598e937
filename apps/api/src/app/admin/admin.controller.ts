import { Body, Controller, Get, HttpCode, Inject, Post, Query } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import {
  BrokerUnavailableError,
  MAX_BROWSE,
  QueueBrowser,
  QueueStatsReader,
  Topology,
  UnroutedRedriver,
} from '@tasksys/messaging';
import {
  ApiKeyService,
  type Principal,
  ReconcileCommand,
  RedriveDeadLettersCommand,
  TaskReports,
  TaskTypeRegistry,
  WorkerFleetQuery,
} from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';
import { actorOf, CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import { CreateApiKeyRequestDto, PageQueryDto } from '../tasks/task.dto';
import { ApiKeyView, ReportPageView, toReportView } from '../tasks/task.views';
import { BrowseQueryDto, ReconcileRequestDto, RedriveDeadLettersRequestDto, RedriveRequestDto } from './admin.dto';
import {
  BrokerMessageListView,
  DeadLetterRedriveView,
  QueueListView,
  ReconcileView,
  toBrokerMessageView,
  toQueueView,
  toWorkerView,
  UnroutedRedriveView,
  WorkerFleetView,
} from './admin.views';

/** Broker calls answer 503 (BROKER.UNAVAILABLE) while RabbitMQ is unreachable, also when it drops under a call. */
async function broker<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const e = err as { code?: unknown; message?: string };
    // amqplib: the connection dropped under us (BrokerUnavailableError has a code: it goes on as it is).
    if (/closed|connection/i.test(e?.message ?? '') && e?.code === undefined)
      throw new BrokerUnavailableError(String(e.message));
    throw err;
  }
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiForbiddenResponse({ description: 'Not an admin key' })
@RequireRole('admin')
@Controller('v1/admin')
export class AdminController {
  private readonly workersExpected: number;

  constructor(
    private readonly keys: ApiKeyService,
    private readonly reports: TaskReports,
    private readonly queueStats: QueueStatsReader,
    private readonly browser: QueueBrowser,
    private readonly topology: Topology,
    private readonly unrouted: UnroutedRedriver,
    private readonly deadLetters: RedriveDeadLettersCommand,
    private readonly fleet: WorkerFleetQuery,
    private readonly reconciler: ReconcileCommand,
    private readonly taskTypes: TaskTypeRegistry,
    @Inject(ConfigService) config: ConfigService<ApiConfig, true>,
  ) {
    this.workersExpected = config.get('WORKERS_EXPECTED', { infer: true });
  }

  @Post('api-keys')
  @ApiOperation({ summary: 'Issue an API key for an owner (the secret is shown only in this answer)' })
  @ApiCreatedResponse({ type: ApiKeyView })
  async createKey(@Body() dto: CreateApiKeyRequestDto): Promise<ApiKeyView> {
    const issued = await this.keys.issue(dto.owner, dto.role);
    return { key: issued.key, owner: issued.owner, role: issued.role };
  }

  @Get('reports')
  @ApiOperation({ summary: 'Users’ problem reports, newest first' })
  @ApiOkResponse({ type: ReportPageView })
  async listReports(@Query() q: PageQueryDto): Promise<ReportPageView> {
    const page = await this.reports.list(q.limit ?? 20, q.cursor);
    return { items: page.items.map(toReportView), nextCursor: page.nextCursor };
  }

  @Get('queues')
  @ApiOperation({
    summary: 'Every queue of the topology: messages ready, unacked and consumers',
    description:
      'From the RabbitMQ management API (RABBITMQ_MANAGEMENT_URL) when reachable, refreshed by the broker every few seconds; otherwise from AMQP, with `unacked: null`.',
  })
  @ApiOkResponse({ type: QueueListView })
  @ApiServiceUnavailableResponse({ description: 'RabbitMQ unreachable (code BROKER.UNAVAILABLE)' })
  async queues(): Promise<QueueListView> {
    const report = await broker(() => this.queueStats.read(this.taskTypes.list().map((t) => t.definition.type)));
    return { source: report.source, at: new Date().toISOString(), items: report.queues.map(toQueueView) };
  }

  @Get('dead-letters')
  @ApiOperation({
    summary: 'Dead letters from the head of the dead-letter queue, left in place',
    description: `limit at most ${MAX_BROWSE}`,
  })
  @ApiOkResponse({ type: BrokerMessageListView })
  @ApiServiceUnavailableResponse({ description: 'RabbitMQ unreachable (code BROKER.UNAVAILABLE)' })
  async listDeadLetters(@Query() q: BrowseQueryDto): Promise<BrokerMessageListView> {
    return this.peek(this.topology.queues.dead, q.limit ?? 50);
  }

  @Post('dead-letters/redrive')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Run dead-lettered tasks again',
    description:
      'For each dead letter (of the chosen tasks, or all): a failed or cancelled task returns to queued with a fresh attempt budget and its work ' +
      'message goes through the outbox, then the dead letter is removed; one whose task is still queued, retrying or running gets a new work ' +
      'message through the outbox before it is removed (it may be the last copy of that work); one whose task succeeded is removed as stale; ' +
      'a malformed one stays unless purgeMalformed; one whose task is no longer in the database (deleted by retention) stays, counted as missing.',
  })
  @ApiOkResponse({ type: DeadLetterRedriveView })
  @ApiServiceUnavailableResponse({ description: 'RabbitMQ unreachable (code BROKER.UNAVAILABLE)' })
  async redriveDeadLetters(
    @CurrentPrincipal() p: Principal,
    @Body() dto: RedriveDeadLettersRequestDto,
  ): Promise<DeadLetterRedriveView> {
    return broker(() =>
      this.deadLetters.execute({
        taskIds: dto.taskIds,
        purgeMalformed: dto.purgeMalformed ?? false,
        limit: dto.limit ?? MAX_BROWSE,
        actor: actorOf(p),
      }),
    );
  }

  @Get('unrouted')
  @ApiOperation({ summary: 'Messages no binding matched (the alternate exchange’s queue), left in place' })
  @ApiOkResponse({ type: BrokerMessageListView })
  @ApiServiceUnavailableResponse({ description: 'RabbitMQ unreachable (code BROKER.UNAVAILABLE)' })
  async listUnrouted(@Query() q: BrowseQueryDto): Promise<BrokerMessageListView> {
    return this.peek(this.topology.queues.unrouted, q.limit ?? 50);
  }

  @Post('unrouted/redrive')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Republish unrouted messages (of the chosen tasks, or all) to the work exchange under their routing key, confirmed, then remove them',
  })
  @ApiOkResponse({ type: UnroutedRedriveView })
  @ApiServiceUnavailableResponse({ description: 'RabbitMQ unreachable (code BROKER.UNAVAILABLE)' })
  async redriveUnrouted(@Body() dto: RedriveRequestDto): Promise<UnroutedRedriveView> {
    return broker(() => this.unrouted.redrive({ taskIds: dto.taskIds, limit: dto.limit ?? MAX_BROWSE }));
  }

  @Get('workers')
  @ApiOperation({ summary: 'The worker fleet: alive (heartbeat within 15 s, not stopped) against WORKERS_EXPECTED' })
  @ApiOkResponse({ type: WorkerFleetView })
  async workers(): Promise<WorkerFleetView> {
    const workers = await this.fleet.list();
    return {
      expected: this.workersExpected,
      alive: workers.filter((w) => w.alive).length,
      workers: workers.map(toWorkerView),
    };
  }

  @Post('reconcile')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Re-enqueue tasks whose message may be gone',
    description:
      'Running tasks with an expired lease, retrying tasks past due and queued tasks older than olderThanMs get a new work message through the ' +
      'outbox (e.g. after the broker lost its data). Duplicates are absorbed by the workers’ claim.',
  })
  @ApiOkResponse({ type: ReconcileView })
  async reconcile(@Body() dto: ReconcileRequestDto): Promise<ReconcileView> {
    return this.reconciler.execute({ olderThanMs: dto.olderThanMs ?? 60_000, limit: dto.limit ?? 10_000 });
  }

  private async peek(queue: string, limit: number): Promise<BrokerMessageListView> {
    const { total, items } = await broker(() => this.browser.peek(queue, limit));
    return { queue, total, items: items.map(toBrokerMessageView) };
  }
}
