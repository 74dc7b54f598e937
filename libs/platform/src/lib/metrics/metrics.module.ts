import { Global, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { type FastifyHooks, HttpMetricsMiddleware } from './http-metrics.middleware';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/**
 * One Prometheus registry per process with the default Node metrics, HTTP request metrics and
 * `GET /metrics`. Global: any provider injects `MetricsService` to register its own metrics.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [MetricsService, HttpMetricsMiddleware],
  exports: [MetricsService],
})
export class MetricsModule implements NestModule {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly httpMetrics: HttpMetricsMiddleware,
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    const adapter = this.adapterHost.httpAdapter;
    if (adapter?.getType() === 'fastify') this.httpMetrics.observeFastify(adapter.getInstance<FastifyHooks>());
    else consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}
