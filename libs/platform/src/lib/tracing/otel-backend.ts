import type { IncomingMessage } from 'node:http';
import {
  type Context,
  context,
  DiagConsoleLogger,
  DiagLogLevel,
  diag,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { diagLogLevelFromString, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { MessagingSpan, MessagingSpanOptions, SpanAttributes, TracingBackend } from './spans';
import type { OtlpProtocol } from './tracing.config';

/** How long shutdown waits for the last export: a collector that is down must not hold the exit. */
const SHUTDOWN_EXPORT_MS = 5000;
/** Probes and scrapes every few seconds would be most of the traces and none of the interest. */
const UNTRACED_PATHS = /^\/(health|metrics)(\/|\?|$)/;

/**
 * @internal The OpenTelemetry side of the tracing facade (spans.ts). Loaded by `startTracing`, and
 * only when traces are exported, before the modules the instrumentations patch (http, pg) are loaded.
 */
export function createOtelBackend(options: { serviceName: string; protocol: OtlpProtocol }): TracingBackend {
  diag.setLogger(new DiagConsoleLogger(), diagLogLevelFromString(process.env['OTEL_LOG_LEVEL']) ?? DiagLogLevel.ERROR);
  // Endpoint (the generic one with /v1/traces appended, the traces one as is), headers and timeout
  // come from the OTEL_EXPORTER_OTLP_* variables, read by the exporters themselves.
  const exporter = options.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
  const provider = new NodeTracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the default name.
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }))
      .merge(detectResources({ detectors: [envDetector] })),
    // OTEL_BSP_* are read by the processor, OTEL_TRACES_SAMPLER(_ARG) by the provider.
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_PATHS.test(req.url ?? ''),
        // The matched pattern, on the request as express leaves it (the api on Fastify puts it there too): `POST /v1/tasks/:id`.
        applyCustomAttributesOnSpan: (span, request) => {
          const { route, baseUrl, method } = request as IncomingMessage & {
            route?: { path?: unknown };
            baseUrl?: string;
          };
          if (typeof route?.path !== 'string') return;
          const pattern = `${baseUrl ?? ''}${route.path}`;
          span.setAttribute('http.route', pattern);
          span.updateName(`${method ?? 'GET'} ${pattern}`);
        },
        // Background calls (the management API, webhooks) outside any task's span start no trace.
        requireParentforOutgoingSpans: true,
      }),
      // Without a parent, every poll, heartbeat and promoter probe would be a trace of its own.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  const tracer = provider.getTracer('tasksys');

  const traceparentOf = (span: Span): string | undefined => {
    if (!isSpanContextValid(span.spanContext())) return undefined;
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
    return carrier['traceparent'];
  };
  const defined = (attributes: SpanAttributes) =>
    Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)) as Record<
      string,
      string | number | boolean
    >;
  const fail = (span: Span, error: { code?: string; name?: string; message: string }) => {
    const type = error.code ?? error.name ?? 'Error';
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.setAttribute('error.type', type);
    span.recordException({ name: type, message: error.message });
  };

  return {
    activeTraceparent() {
      const span = trace.getSpan(context.active());
      return span ? traceparentOf(span) : undefined;
    },

    async inMessagingSpan<T>(spec: MessagingSpanOptions, run: (span: MessagingSpan) => Promise<T>): Promise<T> {
      const parent: Context =
        spec.parent === undefined ? context.active() : propagation.extract(ROOT_CONTEXT, { traceparent: spec.parent });
      const publish = spec.operation === 'publish';
      const span = tracer.startSpan(
        `${spec.operation} ${spec.destination}`,
        {
          kind: publish ? SpanKind.PRODUCER : SpanKind.CONSUMER,
          attributes: defined({
            'messaging.system': 'rabbitmq',
            'messaging.operation.name': spec.operation,
            'messaging.operation.type': publish ? 'send' : 'process',
            'messaging.destination.name': spec.destination,
            ...spec.attributes,
          }),
        },
        parent,
      );
      try {
        return await context.with(trace.setSpan(parent, span), () => run({ traceparent: traceparentOf(span) }));
      } catch (err) {
        fail(span, err instanceof Error ? err : { message: String(err) });
        throw err;
      } finally {
        span.end();
      }
    },

    annotateActiveSpan(attributes) {
      trace.getActiveSpan()?.setAttributes(defined(attributes));
    },

    failActiveSpan(error) {
      const span = trace.getActiveSpan();
      if (span) fail(span, error);
    },

    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch((err: Error) => diag.error(`trace export at shutdown failed: ${err.message}`)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_EXPORT_MS).unref())),
      ]);
      clearTimeout(timer);
    },
  };
}
