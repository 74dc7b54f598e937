import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { PublicRoute } from './public-route';
import { type HealthModuleOptions, InjectHealthOptions, type ReadinessCheck } from './readiness-check';

/** How long one readiness check may take before it counts as down. */
const CHECK_TIMEOUT_MS = 3000;

/** @internal `/health/live` (the process answers) and `/health/ready` (every readiness check passes). */
@ApiTags('operations')
@PublicRoute()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @InjectHealthOptions() private readonly options: HealthModuleOptions,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process is up and its event loop answers' })
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: every dependency (database, broker) is usable' })
  @ApiServiceUnavailableResponse({ description: 'At least one dependency is down; `error` names it' })
  ready() {
    return this.health.check(this.options.checks.map((c) => () => this.run(c)));
  }

  private async run(c: ReadinessCheck): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(c.name);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      });
      const ok = await Promise.race([Promise.resolve(c.check()), timeout]);
      return ok === false ? session.down({ message: 'not ready' }) : session.up();
    } catch (err) {
      return session.down({ message: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}
