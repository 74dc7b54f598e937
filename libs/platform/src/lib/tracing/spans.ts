/**
 * The spans the product makes itself (the relay's publish, the worker's run), behind a facade that
 * imports nothing of OpenTelemetry: with tracing off (the default) no backend is installed and every
 * call is a plain function call, so the SDK is never even loaded. `startTracing` installs the backend.
 */

/** Attribute values a span accepts; undefined ones are left out. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface MessagingSpanOptions {
  /**
   * OTel messaging conventions: `publish` is a PRODUCER span (operation type `send`), `process` a
   * CONSUMER span (operation type `process`). The span is named `<operation> <destination>`.
   */
  operation: 'publish' | 'process';
  /** messaging.destination.name: for RabbitMQ, the exchange. */
  destination: string;
  /**
   * The parent's W3C `traceparent` (the outbox row's, the message's), whatever span is active; none:
   * the active span's child, or a new trace (a cancel signal's row carries none).
   */
  parent?: string;
  attributes?: SpanAttributes;
}

/** The span an `inMessagingSpan` callback runs in. */
export interface MessagingSpan {
  /** The W3C `traceparent` naming this span, for the message it sends; undefined when tracing is off. */
  readonly traceparent: string | undefined;
}

/** @internal What `startTracing` installs: the OpenTelemetry side of this facade. */
export interface TracingBackend {
  activeTraceparent(): string | undefined;
  inMessagingSpan<T>(options: MessagingSpanOptions, run: (span: MessagingSpan) => Promise<T>): Promise<T>;
  annotateActiveSpan(attributes: SpanAttributes): void;
  failActiveSpan(error: { code?: string; message: string }): void;
  shutdown(): Promise<void>;
}

const OFF: MessagingSpan = Object.freeze({ traceparent: undefined });
let backend: TracingBackend | null = null;

/** @internal */
export function installTracingBackend(next: TracingBackend | null): void {
  backend = next;
}

/** True once `startTracing` turned tracing on in this process. */
export function tracingEnabled(): boolean {
  return backend !== null;
}

/** The W3C `traceparent` of the active span (the HTTP request's, the run's); undefined when off or none. */
export function activeTraceparent(): string | undefined {
  return backend?.activeTraceparent();
}

/** Runs `run` inside a new messaging span (ended when it settles; a rejection is recorded on it). */
export function inMessagingSpan<T>(
  options: MessagingSpanOptions,
  run: (span: MessagingSpan) => Promise<T>,
): Promise<T> {
  return backend ? backend.inMessagingSpan(options, run) : run(OFF);
}

/** Adds attributes to the active span (what is known only later, such as a task's attempt). */
export function annotateActiveSpan(attributes: SpanAttributes): void {
  backend?.annotateActiveSpan(attributes);
}

/** Marks the active span failed: status ERROR, `error.type` the code, the error as an exception event. */
export function failActiveSpan(error: { code?: string; message: string }): void {
  backend?.failActiveSpan(error);
}

/** Exports what is buffered and stops tracing; a no-op when off. Bounded: a dead collector cannot hold the exit. */
export async function shutdownTracing(): Promise<void> {
  const current = backend;
  if (!current) return;
  backend = null;
  await current.shutdown();
}
