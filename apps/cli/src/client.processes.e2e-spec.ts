/**
 * @tasksys/client against the built api and one worker (processes from dist/: `npm run build`
 * first), over real PostgreSQL and RabbitMQ in a schema and namespace of their own.
 */
import { randomUUID } from 'node:crypto';
import { ApiError, type TaskStreamEvent, TasksysClient, WaitTimeoutError } from '@tasksys/client';
import { waitFor } from '@tasksys/testing';
import { startSystemProcesses, type SystemProcesses } from '../test/system-processes';

describe('@tasksys/client against the running api and a worker', () => {
  let system: SystemProcesses;
  let admin: TasksysClient;
  let alice: TasksysClient;

  beforeAll(async () => {
    system = await startSystemProcesses('client');
    admin = new TasksysClient({ baseUrl: system.api.url, key: system.adminKey });
    const issued = await admin.admin.createKey('alice');
    expect(issued).toMatchObject({ owner: 'alice', role: 'user', key: expect.any(String) });
    alice = new TasksysClient({ baseUrl: system.api.url, key: issued.key });
  }, 120_000);

  afterAll(() => system?.close(), 60_000);

  it('submits, follows the stream through progress to success, and waitFor returns the terminal task', async () => {
    const created = await alice.submit('demo.sleep', { ms: 600, steps: 3 }, { priority: 5 });
    expect(created).toMatchObject({ type: 'demo.sleep', status: 'queued', priority: 5, owner: 'alice' });
    const events: TaskStreamEvent[] = [];
    const done = await alice.waitFor(created.id, { timeoutMs: 60_000, onEvent: (e) => events.push(e) });
    expect(done).toMatchObject({ id: created.id, status: 'succeeded', progress: { percent: 100 } });
    expect(events[0]).toMatchObject({ event: 'status', task: { id: created.id } });
    expect(events.filter((e) => e.event === 'progress').length).toBeGreaterThan(0);
    expect((await alice.get(created.id)).status).toBe('succeeded');
    const transitions = (await alice.events(created.id)).map((e) => e.to);
    expect(transitions).toEqual(expect.arrayContaining(['queued', 'running', 'succeeded']));
  }, 90_000);

  it('sends the Idempotency-Key: the same key and body give the same task', async () => {
    const key = randomUUID();
    const first = await alice.submit('demo.sleep', { ms: 0 }, { idempotencyKey: key });
    const again = await alice.submit('demo.sleep', { ms: 0 }, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    const conflict = await alice.submit('demo.sleep', { ms: 1 }, { idempotencyKey: key }).catch((e: unknown) => e);
    expect(conflict).toMatchObject({ status: 409, code: 'TASK.IDEMPOTENCY_CONFLICT' });
  });

  it('submits a batch in order and lists it, newest first, filtered by type', async () => {
    const tasks = await alice.submitBatch([
      { type: 'demo.sleep', payload: { ms: 0 } },
      { type: 'demo.sleep', payload: { ms: 1 }, start: false },
    ]);
    expect(tasks.map((t) => t.status)).toEqual(['queued', 'new']);
    const page = await alice.list({ type: 'demo.sleep', limit: 100 });
    expect(page.items.map((t) => t.id)).toEqual(expect.arrayContaining(tasks.map((t) => t.id)));
    expect(page.items.every((t) => t.owner === 'alice')).toBe(true);
    expect((await alice.start(tasks[1].id)).status).toBe('queued');
  });

  it('cancels a running task and retries it', async () => {
    const task = await alice.submit('demo.sleep', { ms: 60_000, steps: 60 });
    await waitFor('the task to run', async () => (await alice.get(task.id)).status === 'running', 30_000);
    expect((await alice.cancel(task.id)).status).toBe('cancelled');
    expect((await alice.waitFor(task.id, { timeoutMs: 10_000 })).status).toBe('cancelled');
    expect(['queued', 'running']).toContain((await alice.retry(task.id)).status);
    await alice.cancel(task.id);
  }, 60_000);

  it('throws ApiError with the api’s status, code and message', async () => {
    const invalid = await alice.submit('demo.sleep', { ms: -1 }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ApiError);
    expect(invalid).toMatchObject({
      status: 400,
      code: 'REQUEST.INVALID',
      message: expect.stringContaining('payload.ms'),
    });
    await expect(alice.get(randomUUID())).rejects.toMatchObject({ status: 404, code: 'TASK.NOT_FOUND' });
    const nobody = new TasksysClient({ baseUrl: system.api.url, key: 'not-a-key' });
    let told: ApiError | undefined;
    const stranger = new TasksysClient({
      baseUrl: system.api.url,
      key: 'not-a-key',
      onUnauthorized: (e) => (told = e),
    });
    await expect(nobody.list()).rejects.toMatchObject({ status: 401, code: 'AUTH.UNAUTHENTICATED' });
    await expect(stranger.get(randomUUID())).rejects.toBeInstanceOf(ApiError);
    expect(told?.status).toBe(401);
    await expect(alice.admin.workers()).rejects.toMatchObject({ status: 403, code: 'AUTH.FORBIDDEN' });
    const streamOfNothing = alice.stream(randomUUID());
    await expect(streamOfNothing.next()).rejects.toMatchObject({ status: 404 });
  });

  it('waitFor gives up after timeoutMs with WaitTimeoutError', async () => {
    const task = await alice.submit('demo.sleep', { ms: 30_000 });
    const started = Date.now();
    await expect(alice.waitFor(task.id, { timeoutMs: 1000 })).rejects.toBeInstanceOf(WaitTimeoutError);
    expect(Date.now() - started).toBeLessThan(15_000);
    await alice.cancel(task.id);
  }, 30_000);

  it('resumes the stream after the api restarts mid-task and still sees the end', async () => {
    const task = await alice.submit('demo.sleep', { ms: 6000, steps: 6 });
    const statuses: string[] = [];
    let sawRunning!: () => void;
    const running = new Promise<void>((resolve) => (sawRunning = resolve));
    const waiting = (async () => {
      for await (const e of alice.stream(task.id, { reconnectDelayMs: 200 })) {
        if (e.event === 'status') statuses.push(e.task.status);
        if (e.event === 'progress') sawRunning();
      }
    })();
    await running;
    await system.api.stop(15_000);
    await system.api.start();
    await waiting;
    expect(statuses.at(-1)).toBe('succeeded');
    // The first event of each connection is the current status: at least two connections.
    expect(statuses.length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('calls the admin routes: workers, dead letters and unrouted messages, list and redrive', async () => {
    const fleet = await admin.admin.workers();
    expect(fleet.alive).toBeGreaterThanOrEqual(1);
    expect(fleet.workers.map((w) => w.id)).toContain(system.worker.name);
    // A fatal failure is dead-lettered; redriving it runs the task again.
    const failed = await alice.submit('demo.sleep', { ms: 0, fatal: true });
    expect((await alice.waitFor(failed.id, { timeoutMs: 30_000 })).status).toBe('failed');
    const letters = await waitFor(
      'the dead letter',
      async () => {
        const list = await admin.admin.deadLetters(100);
        return list.items.some((m) => m.taskId === failed.id) && list;
      },
      30_000,
    );
    expect(letters.queue).toContain('dead');
    const redriven = await admin.admin.redriveDeadLetters({ taskIds: [failed.id] });
    expect(redriven.redriven).toBe(1);
    const unrouted = await admin.admin.unrouted(10);
    expect(unrouted).toMatchObject({ total: expect.any(Number), items: expect.any(Array) });
    expect(await admin.admin.redriveUnrouted({})).toMatchObject({ redriven: expect.any(Number) });
    const queues = await admin.admin.queues();
    expect(queues.items.length).toBeGreaterThan(0);
  }, 60_000);
});
