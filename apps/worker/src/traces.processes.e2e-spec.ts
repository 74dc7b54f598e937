/**
 * Traces (issue 18, item 5) against the built api and worker processes (`npx nx run-many -t build -p
 * api worker` first), a local OTLP/HTTP receiver on 127.0.0.1, and the real PostgreSQL and RabbitMQ:
 * one trace per task from the HTTP submit through the relay's publish to the worker's run and its
 * statements, exported as http/json or (the default) http/protobuf; and, off, not even loaded.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTopology, type MessagingConfig } from '@tasksys/messaging';
import { deleteTopology, testMessagingConfig } from '@tasksys/messaging/testing';
import { createTestDatabase, type TestDatabase } from '@tasksys/tasks/testing';
import { AppProcess, freePort, ProcessFleet, waitFor } from '@tasksys/testing';
import { OtlpReceiver, type ReceivedSpan } from '../test/otlp-receiver';
import { WorkerFleet } from '../test/worker-fleet';

const ADMIN_KEY = 'traces-admin-key-0123456789abcdef0123';
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/**
 * Preloaded into each process (NODE_OPTIONS=--require): appends every @opentelemetry module the
 * process requires, and the file requiring it, to the file TRACES_TEST_LOAD_LOG names.
 */
const LOAD_PROBE = `const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const file = process.env.TRACES_TEST_LOAD_LOG;
const load = Module._load;
Module._load = function (request, ...rest) {
  if (file && request.startsWith('@opentelemetry/')) appendFileSync(file, request + ' ' + (rest[0]?.filename ?? '') + '\\n');
  return load.call(this, request, ...rest);
};
`;

describe('traces over OTLP/HTTP (real api and worker processes, real PostgreSQL and RabbitMQ)', () => {
  let t: TestDatabase;
  let messaging: MessagingConfig;
  let receiver: OtlpReceiver;
  let apis: ProcessFleet;
  let workers: WorkerFleet;
  let scratch: string;
  let probe: string;
  let run = 0;

  beforeAll(async () => {
    t = await createTestDatabase();
    messaging = testMessagingConfig();
    receiver = await new OtlpReceiver().start();
    scratch = mkdtempSync(join(tmpdir(), 'tasksys-traces-'));
    probe = join(scratch, 'load-probe.cjs');
    writeFileSync(probe, LOAD_PROBE);
    const common = {
      DATABASE_URL: t.config.DATABASE_URL,
      DATABASE_SCHEMA: t.config.DATABASE_SCHEMA,
      RABBITMQ_URL: messaging.RABBITMQ_URL,
      TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
      RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
      LOG_LEVEL: 'warn',
      // Whatever the shell running the tests has: each test says which OTEL_* variables it sets.
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_PROTOCOL: '',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: '',
      OTEL_SDK_DISABLED: '',
      OTEL_SERVICE_NAME: '',
      NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --require ${probe}`.trim(),
    };
    apis = new ProcessFleet({
      app: 'api',
      names: `${messaging.TASKS_NAMESPACE}-traces-api`,
      env: { ...common, ADMIN_API_KEY: ADMIN_KEY, OUTBOX_POLL_MS: String(messaging.OUTBOX_POLL_MS) },
    });
    workers = new WorkerFleet(
      { database: t.config, messaging },
      { ...common, WORKER_TASK_TYPES: 'demo.sleep', WORKER_SHUTDOWN_GRACE_MS: '1000' },
      `${messaging.TASKS_NAMESPACE}-traces`,
    );
  }, 60_000);

  afterEach(async () => {
    await Promise.all([apis.stopAll(), workers.stopAll()]);
    receiver.requests.length = 0;
  });

  afterAll(async () => {
    await Promise.all([apis?.stopAll(), workers?.stopAll()]);
    await receiver?.stop();
    if (messaging) await deleteTopology(buildTopology(messaging, { serves: ['demo.sleep'] }));
    await t?.drop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  /** One api and one worker with these OTEL_* variables; each logs the @opentelemetry modules it loads. */
  async function startPair(api: Record<string, string>, worker: Record<string, string> = api) {
    run++;
    const loads = { api: join(scratch, `api-${run}.loaded`), worker: join(scratch, `worker-${run}.loaded`) };
    const [a, w] = await Promise.all([
      apis.start({ ...api, TRACES_TEST_LOAD_LOG: loads.api }),
      workers.start({ ...worker, TRACES_TEST_LOAD_LOG: loads.worker }),
    ]);
    const loaded = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    return { api: a, worker: w, loaded: () => ({ api: loaded(loads.api), worker: loaded(loads.worker) }) };
  }

  async function call(api: AppProcess, method: string, path: string, key: string, body?: unknown, headers = {}) {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** Submits a short demo.sleep over HTTP (`fields` on top) and waits for it to reach `until`; returns its id. */
  async function submitAndWait(
    api: AppProcess,
    headers: Record<string, string> = {},
    fields: Record<string, unknown> = {},
    until = 'succeeded',
  ): Promise<string> {
    const issued = await call(api, 'POST', '/v1/admin/api-keys', ADMIN_KEY, { owner: 'tracer', role: 'user' });
    expect(issued.status).toBe(201);
    const key = issued.body.key as string;
    const created = await call(
      api,
      'POST',
      '/v1/tasks',
      key,
      { type: 'demo.sleep', payload: { ms: 20 }, ...fields },
      headers,
    );
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await waitFor(
      `task ${id} ${until}`,
      async () => (await call(api, 'GET', `/v1/tasks/${id}`, key)).body.status === until,
      60_000,
      100,
    );
    return id;
  }

  /** Waits for the task's run span and the rest of its trace (server, publish, a statement under the run). */
  async function traceOf(taskId: string): Promise<ReceivedSpan[]> {
    let trace: ReceivedSpan[] = [];
    await waitFor(
      `the spans of task ${taskId} (received ${receiver.spans().length})`,
      () => {
        const spans = receiver.spans();
        const runSpan = spans.find((s) => s.kind === CONSUMER && s.attributes['tasksys.task.id'] === taskId);
        if (!runSpan) return false;
        trace = spans.filter((s) => s.traceId === runSpan.traceId);
        return (
          trace.some((s) => s.kind === SERVER) &&
          trace.some((s) => s.kind === PRODUCER) &&
          trace.some((s) => s.kind === CLIENT && s.parentSpanId === runSpan.spanId)
        );
      },
      30_000,
      100,
    );
    return trace;
  }

  const isStatement = (s: ReceivedSpan) =>
    s.kind === CLIENT && (s.attributes['db.system'] ?? s.attributes['db.system.name']) === 'postgresql';
  /** The one span of `trace` that `match` picks (the task's trace has one server, publish and run span each). */
  const one = (trace: ReceivedSpan[], match: (s: ReceivedSpan) => boolean): ReceivedSpan => {
    const found = trace.filter(match);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const pathOf = (s: ReceivedSpan) => String(s.attributes['url.path'] ?? s.attributes['http.target'] ?? '');

  it('exports one trace per task over http/json: HTTP submit -> relay publish -> worker run -> its statements', async () => {
    const pair = await startPair({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
    });
    const id = await submitAndWait(pair.api);
    const trace = await traceOf(id);
    const kinds = ['', 'internal', 'server', 'client', 'producer', 'consumer'];
    console.log(
      `trace ${trace[0].traceId} of task ${id}: ${trace.length} spans\n` +
        trace
          .map((s) => `  ${s.service} ${kinds[s.kind]} "${s.name}" ${s.spanId} <- ${s.parentSpanId || 'root'}`)
          .join('\n'),
    );
    const workExchange = buildTopology(messaging).exchanges.work;

    // The generic endpoint gets the traces path appended; the body is OTLP JSON.
    expect(receiver.requests.every((r) => r.path === '/v1/traces')).toBe(true);
    expect(receiver.requests.every((r) => r.contentType.startsWith('application/json'))).toBe(true);

    const server = one(trace, (s) => s.kind === SERVER && pathOf(s) === '/v1/tasks');
    // The root (no caller's trace), named by its route pattern.
    expect(server).toMatchObject({ service: 'tasksys-api', parentSpanId: '', name: 'POST /v1/tasks' });
    expect(server.attributes['http.route']).toBe('/v1/tasks');
    const publish = one(trace, (s) => s.kind === PRODUCER);
    expect(publish).toMatchObject({ name: `publish ${workExchange}`, parentSpanId: server.spanId });
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': workExchange,
      'messaging.rabbitmq.destination.routing_key': 'demo.sleep',
      'tasksys.task.id': id,
    });
    expect(typeof publish.attributes['messaging.message.id']).toBe('string');
    const runSpan = one(trace, (s) => s.kind === CONSUMER);
    expect(runSpan).toMatchObject({
      service: 'tasksys-worker',
      name: `process ${workExchange}`,
      parentSpanId: publish.spanId,
    });
    expect(runSpan.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.message.id': publish.attributes['messaging.message.id'],
      'tasksys.task.id': id,
      'tasksys.task.type': 'demo.sleep',
      'tasksys.task.attempt': 1,
      'tasksys.task.outcome': 'succeeded',
    });
    const statements = trace.filter((s) => isStatement(s) && s.parentSpanId === runSpan.spanId);
    expect(statements.length).toBeGreaterThanOrEqual(1);
    expect(statements.every((s) => s.service === 'tasksys-worker')).toBe(true);
    // The submit's own INSERT sits under the server span.
    expect(trace.some((s) => isStatement(s) && s.parentSpanId === server.spanId)).toBe(true);

    // One tree: a single root, every other span's parent in the same trace.
    const ids = new Set(trace.map((s) => s.spanId));
    expect(trace.filter((s) => s.parentSpanId === '')).toEqual([server]);
    expect(trace.filter((s) => s !== server && !ids.has(s.parentSpanId))).toEqual([]);
    // Resource attributes: the default service names, OTEL_RESOURCE_ATTRIBUTES honoured.
    expect(new Set(receiver.spans().map((s) => s.service))).toEqual(new Set(['tasksys-api', 'tasksys-worker']));
    const resource = JSON.parse(receiver.requests[0].body.toString()).resourceSpans[0].resource.attributes;
    expect(resource).toContainEqual({ key: 'deployment.environment.name', value: { stringValue: 'test' } });
    // Health probes (the fleet polled /health/ready) start no traces.
    expect(receiver.spans().filter((s) => pathOf(s).startsWith('/health'))).toEqual([]);
    // The load probe sees the SDK here, so its silence in the test with tracing off means something.
    const sdk = (lines: string[]) => lines.filter((l) => l.startsWith('@opentelemetry/sdk-trace-node '));
    expect(sdk(pair.loaded().api)).toHaveLength(1);
    expect(sdk(pair.loaded().worker)).toHaveLength(1);

    // A caller's trace is continued: the server span is the child of its traceparent, and the run is in it.
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const second = await submitAndWait(pair.api, { traceparent: `00-${traceId}-${callerSpan}-01` });
    const continued = await traceOf(second);
    expect(continued[0].traceId).toBe(traceId);
    expect(continued.find((s) => s.kind === SERVER && pathOf(s) === '/v1/tasks')?.parentSpanId).toBe(callerSpan);

    // A run that fails for good is an ERROR span carrying the error's code.
    const fatal = await submitAndWait(pair.api, {}, { payload: { ms: 1, fatal: true } }, 'failed');
    const failedRun = one(await traceOf(fatal), (s) => s.kind === CONSUMER);
    expect(failedRun.status).toMatchObject({ code: 2, message: 'demo.sleep asked to fail for good' });
    expect(failedRun.attributes).toMatchObject({ 'error.type': 'DEMO.FATAL', 'tasksys.task.outcome': 'failed' });

    // A retried task stays in its trace: each run is the child of the one before (the retry carries it).
    const retried = await submitAndWait(pair.api, {}, { payload: { ms: 1, failTimes: 1 } });
    const runsOf = () =>
      receiver.spans().filter((s) => s.kind === CONSUMER && s.attributes['tasksys.task.id'] === retried);
    await waitFor(`both runs of task ${retried}`, () => runsOf().length === 2, 30_000);
    const [firstRun, secondRun] = runsOf().sort(
      (a, b) => Number(a.attributes['tasksys.task.attempt']) - Number(b.attributes['tasksys.task.attempt']),
    );
    expect(firstRun.attributes).toMatchObject({ 'tasksys.task.attempt': 1, 'tasksys.task.outcome': 'failed' });
    expect(secondRun.attributes).toMatchObject({ 'tasksys.task.attempt': 2, 'tasksys.task.outcome': 'succeeded' });
    expect(secondRun).toMatchObject({ traceId: firstRun.traceId, parentSpanId: firstRun.spanId });
    expect((await traceOf(retried)).some((s) => s.kind === SERVER && pathOf(s) === '/v1/tasks')).toBe(true);

    // A task due later is queued by a worker's promoter long after the request: still the request's trace.
    const delayed = await submitAndWait(pair.api, {}, { delayMs: 1500 });
    const late = await traceOf(delayed);
    const lateServer = one(late, (s) => s.kind === SERVER && pathOf(s) === '/v1/tasks');
    expect(one(late, (s) => s.kind === PRODUCER).parentSpanId).toBe(lateServer.spanId);
    expect(one(late, (s) => s.kind === CONSUMER).parentSpanId).toBe(one(late, (s) => s.kind === PRODUCER).spanId);
  }, 180_000);

  it('exports http/protobuf by default, to the traces endpoint as given, and flushes what is buffered on SIGTERM', async () => {
    // A 10-minute batch delay: nothing is exported before the processes shut down.
    const pair = await startPair(
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '600000' },
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`, OTEL_BSP_SCHEDULE_DELAY: '600000' },
    );
    const id = await submitAndWait(pair.api);
    expect(receiver.requests).toEqual([]);
    const [, workerExit] = await Promise.all([pair.api.stop(20_000), pair.worker.stop(20_000)]);
    expect(workerExit).toEqual({ code: 0, signal: null });

    const byPath = (path: string) => receiver.requests.filter((r) => r.path === path);
    // The generic endpoint with /v1/traces appended (the api), the signal-specific one as is (the worker).
    expect(byPath('/v1/traces').length).toBeGreaterThanOrEqual(1);
    expect(byPath('/custom/traces').length).toBeGreaterThanOrEqual(1);
    expect(receiver.requests.length).toBe(byPath('/v1/traces').length + byPath('/custom/traces').length);
    expect(receiver.requests.every((r) => r.contentType === 'application/x-protobuf')).toBe(true);
    // Not decoded: protobuf carries strings as UTF-8, so the service names and the task id show.
    const bodies = (path: string) => Buffer.concat(byPath(path).map((r) => r.body));
    expect(bodies('/v1/traces').includes('tasksys-api')).toBe(true);
    expect(bodies('/custom/traces').includes('tasksys-worker')).toBe(true);
    expect(bodies('/custom/traces').includes(id)).toBe(true);
  }, 180_000);

  it('sends nothing and loads no OpenTelemetry module with the endpoint unset, or with OTEL_SDK_DISABLED=true', async () => {
    const pair = await startPair(
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '200' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: 'true', OTEL_BSP_SCHEDULE_DELAY: '200' },
    );
    await submitAndWait(pair.api);
    await Promise.all([pair.api.stop(20_000), pair.worker.stop(20_000)]);
    expect(receiver.requests).toEqual([]);
    // prom-client requires the API package (a no-op without an SDK) for its exemplars, tracing or not:
    // that is the one @opentelemetry module either process loads.
    const ours = (lines: string[]) => lines.filter((l) => !/^@opentelemetry\/api \S*\/prom-client\//.test(l));
    const { api, worker } = pair.loaded();
    expect({ api: ours(api), worker: ours(worker) }).toEqual({ api: [], worker: [] });
  }, 180_000);

  it('refuses to start with an unsupported protocol, naming the variable', async () => {
    const api = new AppProcess({
      name: `${messaging.TASKS_NAMESPACE}-traces-grpc`,
      app: 'api',
      port: await freePort(),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_SDK_DISABLED: '' },
    });
    api.spawn();
    expect(await api.exited).toEqual({ code: 1, signal: null });
    // The log stream may still be writing when the exit is reported.
    await waitFor('the start-up error in the log', () =>
      /OTEL_EXPORTER_OTLP_PROTOCOL \("grpc"\): must be http\/protobuf/.test(readFileSync(api.logFile, 'utf8')),
    );
  }, 60_000);
});
