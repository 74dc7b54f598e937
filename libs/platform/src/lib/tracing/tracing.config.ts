import { z } from 'zod';
import { env, validateEnv } from '../config/validate-env';

/** The OTLP/HTTP encodings an exporter is installed for; `http/protobuf` is the specification's default. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

const protocol = z
  .string()
  .refine(
    (value) => (OTLP_PROTOCOLS as readonly string[]).includes(value),
    `must be http/protobuf or http/json (grpc is not supported: no gRPC exporter is installed)`,
  )
  .optional();

/**
 * The standard OpenTelemetry variables this process decides on before anything else loads. The
 * exporters read the rest themselves (endpoint paths, OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT), the SDK
 * the sampler (OTEL_TRACES_SAMPLER, _ARG) and the batch settings (OTEL_BSP_*), the resource
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
 */
export const tracingConfigSchema = z.object({
  OTEL_SDK_DISABLED: z.stringbool({ error: 'must be true or false' }).default(false),
  // `none` turns traces off as the specification says; other exporters are not installed.
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none'], 'must be otlp or none').default('otlp'),
  OTEL_EXPORTER_OTLP_ENDPOINT: env.optionalUrl(['http', 'https']),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: env.optionalUrl(['http', 'https']),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol,
});
export type TracingConfig = z.infer<typeof tracingConfigSchema>;

/** What `startTracing` needs to know: off, or on with the exporter's encoding. */
export type TracingPlan = { enabled: false } | { enabled: true; protocol: OtlpProtocol };

/** Validates the variables (ConfigurationError naming the bad one) and decides whether traces are exported. */
export function planTracing(variables: Record<string, string | undefined>): TracingPlan {
  const config = validateEnv(tracingConfigSchema)(variables);
  const endpoint = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (config.OTEL_SDK_DISABLED || config.OTEL_TRACES_EXPORTER === 'none' || endpoint === undefined) {
    return { enabled: false };
  }
  const chosen = config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  return { enabled: true, protocol: chosen as OtlpProtocol };
}
