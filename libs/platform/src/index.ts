export * from './lib/config/validate-env';
export * from './lib/logging/logging.module';
export * from './lib/metrics/metrics.module';
export * from './lib/metrics/metrics.service';
export * from './lib/health/health.module';
export * from './lib/health/public-route';
export * from './lib/health/readiness-check';
export * from './lib/tracing/trace-context';
