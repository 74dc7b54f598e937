// The public surface of @tasksys/platform. Everything not named here is internal to the lib.

// Errors: the base of every error with a stable code, and the catalogue of codes.
export { AppError } from './lib/errors/app-error';
export { ConfigurationError } from './lib/errors/configuration.error';
export { ERROR_CODES, type ErrorCode } from './lib/errors/error-codes';

// Configuration: validated environment variables, read back into module options.
export { configFrom, env, validateEnv } from './lib/config/validate-env';
export { fromConfig, type OptionsFromConfig } from './lib/config/config-options';

// Logging, metrics, health.
export {
  type LoggingConfig,
  loggingConfigSchema,
  LoggingModule,
  type LoggingModuleAsyncOptions,
  type LoggingOptions,
} from './lib/logging/logging.module';
export { MetricsModule } from './lib/metrics/metrics.module';
export { MetricsService } from './lib/metrics/metrics.service';
export { HealthModule, type HealthModuleAsyncOptions } from './lib/health/health.module';
export type { HealthModuleOptions, ReadinessCheck } from './lib/health/readiness-check';
export { PUBLIC_ROUTE_KEY, PublicRoute } from './lib/health/public-route';

// Tracing (started by `startTracing` of @tasksys/platform/tracing, first thing in main.ts).
export { continueTrace } from './lib/tracing/trace-context';
export {
  activeTraceparent,
  annotateActiveSpan,
  failActiveSpan,
  inMessagingSpan,
  type MessagingSpan,
  type MessagingSpanOptions,
  shutdownTracing,
  type SpanAttributes,
  tracingEnabled,
} from './lib/tracing/spans';
export { TracingModule } from './lib/tracing/tracing.module';
