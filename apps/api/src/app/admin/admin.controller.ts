import { Body, Controller, Get, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ApiKeyService, TaskReports } from '@tasksys/tasks';
import { RequireRole } from '../auth/auth.decorators';
import { CreateApiKeyRequestDto, PageQueryDto } from '../tasks/task.dto';
import { ApiKeyView, ReportPageView, toReportView } from '../tasks/task.views';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiForbiddenResponse({ description: 'Not an admin key' })
@RequireRole('admin')
@Controller('v1/admin')
export class AdminController {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly reports: TaskReports,
  ) {}

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
}
