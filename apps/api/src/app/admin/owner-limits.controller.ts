import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { type OwnerLimits, OwnerLimitsService } from '@tasksys/tasks';
import { RequireRole } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation.error';
import { OwnerLimitsRequestDto, OwnerLimitsUpdateView, OwnerLimitsView } from './owner-limits.dto';

/** The owner names API keys accept. */
const OWNER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

function ownerParam(owner: string): string {
  if (!OWNER.test(owner))
    throw new RequestValidationError(
      'owner',
      'owner must be 1-100 letters, digits, ".", "_", "@" or "-", starting with a letter or digit',
    );
  return owner;
}

function toView(l: OwnerLimits): OwnerLimitsView {
  return { ...l, updatedAt: l.updatedAt ? l.updatedAt.toISOString() : null };
}

/** Per-owner quotas (README "Owner quotas"): maxRunning held at the claim, maxQueued refused at submit. */
@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key' })
@ApiForbiddenResponse({ description: 'Not an admin key' })
@RequireRole('admin')
@Controller('v1/admin/owners/:owner/limits')
export class OwnerLimitsController {
  constructor(private readonly limits: OwnerLimitsService) {}

  @Get()
  @ApiOperation({ summary: 'An owner’s quotas and where it stands: running, non-terminal (queued) and held tasks' })
  @ApiParam({ name: 'owner', description: 'The owner, as its API keys name it' })
  @ApiOkResponse({ type: OwnerLimitsView })
  @ApiBadRequestResponse({ description: 'Not a valid owner name (field `owner`)' })
  async get(@Param('owner') owner: string): Promise<OwnerLimitsView> {
    return toView(await this.limits.get(ownerParam(owner)));
  }

  @Put()
  @ApiOperation({
    summary: 'Set an owner’s quotas (a field left out stays, null removes it)',
    description:
      'maxRunning: never more of its tasks run at once, across all workers; the others wait as queued, held, and start as ' +
      'slots free (a raised or removed limit wakes them at once; a lowered one stops nothing that runs). maxQueued: past it, ' +
      'submits answer 429 with Retry-After and write nothing.',
  })
  @ApiParam({ name: 'owner', description: 'The owner, as its API keys name it' })
  @ApiOkResponse({ type: OwnerLimitsUpdateView })
  @ApiBadRequestResponse({
    description:
      'maxRunning or maxQueued not an integer from 1 up (or null), or a bad owner; the message names the field',
  })
  async put(@Param('owner') owner: string, @Body() dto: OwnerLimitsRequestDto): Promise<OwnerLimitsUpdateView> {
    const { limits, woken } = await this.limits.set(ownerParam(owner), {
      maxRunning: dto.maxRunning,
      maxQueued: dto.maxQueued,
    });
    return { ...toView(limits), woken };
  }
}
