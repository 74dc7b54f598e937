import { Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { type Principal, WebhookDeliveries, WebhookSecrets } from '@tasksys/tasks';
import { CurrentPrincipal, ownerScope } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { TasksService } from '../tasks/tasks.service';
import {
  FailingEndpointListView,
  toDeliveryView,
  toFailingEndpointView,
  toSecretView,
  WebhookDeliveryListView,
  WebhookSecretView,
} from './webhook.views';

const uuid = new ParseUUIDPipe({ exceptionFactory: () => new RequestValidationError('id', 'id must be a UUID') });
const DAY_MS = 86_400_000;

/** Completion webhooks: the caller's signing secret, a task's deliveries, endpoints that fail. */
@ApiTags('webhooks')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiTooManyRequestsResponse({ description: 'Rate limit of this key exceeded; see Retry-After (seconds)' })
@Controller('v1')
export class WebhooksController {
  constructor(
    private readonly secrets: WebhookSecrets,
    private readonly deliveries: WebhookDeliveries,
    private readonly tasks: TasksService,
  ) {}

  @Post('webhooks/secret')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create or rotate your webhook signing secret (returned once)',
    description:
      'The previous secret keeps signing for 24 h: meanwhile every delivery carries two `v1,` signatures, one per secret.',
  })
  @ApiCreatedResponse({ type: WebhookSecretView, description: 'The new secret (shown once)' })
  async rotate(@CurrentPrincipal() p: Principal): Promise<WebhookSecretView> {
    return toSecretView(await this.secrets.rotate(p.owner));
  }

  @Get('tasks/:id/deliveries')
  @ApiOperation({ summary: 'The completion webhooks of a task and every attempt of each' })
  @ApiOkResponse({ type: WebhookDeliveryListView })
  @ApiNotFoundResponse({ description: 'No such task, or not yours' })
  async forTask(@CurrentPrincipal() p: Principal, @Param('id', uuid) id: string): Promise<WebhookDeliveryListView> {
    await this.tasks.get(p, id);
    return { items: (await this.deliveries.forTask(id)).map(toDeliveryView) };
  }

  @Get('webhooks/failing-endpoints')
  @ApiOperation({
    summary: 'Callback urls whose last attempts failed in the last 24 h, worst first (yours; admins: everyone’s)',
  })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } })
  @ApiOkResponse({ type: FailingEndpointListView })
  async failing(@CurrentPrincipal() p: Principal, @Query('limit') limit?: string): Promise<FailingEndpointListView> {
    const n = limit === undefined ? 20 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 100)
      throw new RequestValidationError('limit', 'limit must be a whole number from 1 to 100');
    return { items: (await this.deliveries.failingEndpoints(ownerScope(p), DAY_MS, n)).map(toFailingEndpointView) };
  }
}
