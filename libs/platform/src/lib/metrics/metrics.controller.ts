import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { PublicRoute } from '../health/public-route';
import { MetricsService } from './metrics.service';

/** @internal `GET /metrics`, for Prometheus. */
@ApiTags('operations')
@PublicRoute()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Metrics in the Prometheus text format', schema: { type: 'string' } })
  async scrape(@Res({ passthrough: true }) res: { header(name: string, value: string): unknown }): Promise<string> {
    // `header` is both express's and Fastify's (the worker's health port and the api).
    res.header('Content-Type', this.metrics.contentType);
    return this.metrics.scrape();
  }
}
