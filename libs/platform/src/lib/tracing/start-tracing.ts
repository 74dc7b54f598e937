import { installTracingBackend, tracingEnabled } from './spans';
import { planTracing } from './tracing.config';

/**
 * Turns tracing on when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is not true. Call it first thing in
 * main, before Nest, http or pg are loaded: the instrumentations patch modules as they are required.
 * Off (the default), nothing of OpenTelemetry is loaded. Throws ConfigurationError naming a bad variable.
 */
export function startTracing(options: {
  /** service.name unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise. */
  serviceName: string;
  env?: Record<string, string | undefined>;
}): boolean {
  const plan = planTracing(options.env ?? process.env);
  if (!plan.enabled || tracingEnabled()) return tracingEnabled();
  // Required here, not imported: the SDK loads only on this path (checked by a process test).
  const { createOtelBackend } = require('./otel-backend') as typeof import('./otel-backend');
  installTracingBackend(createOtelBackend({ serviceName: options.serviceName, protocol: plan.protocol }));
  return true;
}
