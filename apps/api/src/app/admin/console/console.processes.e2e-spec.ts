/**
 * The web console in headless Chromium (Debian's `chromium`, driven by playwright-core), against
 * the real api (harness) and one real worker process from dist/ (`npm run build` first). Saves a
 * screenshot of each page under tmp/screenshots/ (or SCREENSHOTS_DIR).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageProperties } from 'amqplib';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { TaskPublisher, Topology } from '@tasksys/messaging';
import { BUILTIN_TASK_TYPES, TaskStateMachine } from '@tasksys/tasks';
import { AppProcess, freePort, testRabbitmqUrl, waitFor, WORKSPACE_ROOT } from '@tasksys/testing';
import { type ApiHarness, startApi, TEST_ADMIN_KEY } from '../../../testing/api-harness';
import { findConsoleDir } from './console-static';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
// Each run saves its screenshots under tmp/; `SCREENSHOTS_DIR=docs/screenshots` refreshes the README's.
const SHOTS = join(WORKSPACE_ROOT, process.env['SCREENSHOTS_DIR'] ?? 'tmp/screenshots');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('web console in headless Chromium (real api, one real worker, real PostgreSQL and RabbitMQ)', () => {
  let h: ApiHarness;
  let worker: AppProcess | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let profile: string;
  let alice: string;
  let sm: TaskStateMachine;
  let publisher: TaskPublisher;
  let topology: Topology;

  beforeAll(async () => {
    // Say exactly what is missing rather than skip.
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}. Install it: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH).`,
      );
    }
    const consoleDir = findConsoleDir();
    if (!consoleDir)
      throw new Error(
        'The console is not built (no dist/apps/api/console or dist/apps/console): run `npm run build` first',
      );

    h = await startApi({ WORKERS_EXPECTED: '2', CONSOLE_DIR: consoleDir });
    sm = h.app.get(TaskStateMachine);
    publisher = h.app.get(TaskPublisher);
    // What the worker below declares (it serves demo.sleep); the harness deletes it at the end.
    topology = await h.serveTypes(['demo.sleep']);
    alice = await h.newKey('alice');

    worker = new AppProcess({
      name: 'console-w1',
      app: 'worker',
      port: await freePort(),
      env: {
        DATABASE_URL: h.t.config.DATABASE_URL,
        DATABASE_SCHEMA: h.t.config.DATABASE_SCHEMA,
        RABBITMQ_URL: testRabbitmqUrl(),
        TASKS_NAMESPACE: topology.namespace,
        RETRY_TIERS_MS: topology.queues.retry.map((t) => t.delayMs).join(','),
        LOG_LEVEL: 'warn',
      },
    });
    await worker.start();

    mkdirSync(SHOTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'tasksys-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 760 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await worker?.stop();
    await h?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  }, 60_000);

  const createTask = async (payload: Record<string, unknown>) => {
    const r = await h.call('POST', '/v1/tasks', { key: alice, body: { type: 'demo.sleep', payload } });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const statusOf = async (id: string) => (await h.call('GET', `/v1/tasks/${id}`)).body.status as string;
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const open = async (hash: string) => {
    await page.click(`[data-testid="nav-${hash}"]`);
    // Locators and URL waits, not string functions: the console's CSP (rightly) forbids eval.
    await page.waitForURL((url) => url.hash === `#/${hash}`);
  };

  it('serves the page without a key, asks for the admin key once and keeps it across reloads', async () => {
    const res = await fetch(`${h.baseUrl}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await res.text()).toContain('<div id="app">');
    expect((await fetch(`${h.baseUrl}/console`, { redirect: 'manual' })).status).toBe(301);

    await page.goto(`${h.baseUrl}/console`);
    await page.fill('[data-testid="admin-key"]', alice); // a user key is refused
    await page.click('[data-testid="login"]');
    await page.waitForSelector('[data-testid="login-error"]');
    expect(await page.textContent('[data-testid="login-error"]')).toContain('not an admin key');

    await page.fill('[data-testid="admin-key"]', TEST_ADMIN_KEY);
    await page.click('[data-testid="login"]');
    await page.waitForSelector('[data-testid="tasks-table"]');
    expect(await page.evaluate(() => localStorage.getItem('tasksys.adminKey'))).toBe(TEST_ADMIN_KEY);
    await page.reload();
    await page.waitForSelector('[data-testid="tasks-table"]');
  }, 30_000);

  it('shows a demo.sleep task’s progress bar moving to done', async () => {
    const id = await createTask({ ms: 4000, steps: 8 });
    const row = `tr[data-task-id="${id}"]`;
    await page.waitForSelector(row);
    const seen = new Set<number>();
    let shotTaken = false;
    await waitFor(
      'the task to succeed in the console',
      async () => {
        const state = await page.$eval(row, (tr) => ({
          status: tr.getAttribute('data-status'),
          percent: Number(tr.querySelector('[role="progressbar"]')?.getAttribute('aria-valuenow')),
        }));
        seen.add(state.percent);
        if (!shotTaken && state.status === 'running' && state.percent > 0) {
          shotTaken = true;
          await shot('tasks');
        }
        return state.status === 'succeeded' ? state : undefined;
      },
      20_000,
    );
    const between = [...seen].filter((p) => p > 0 && p < 100);
    expect(between.length).toBeGreaterThanOrEqual(2); // it moved through intermediate steps, not just 0 -> 100
    expect(await page.$eval(`${row} [role="progressbar"]`, (b) => b.getAttribute('aria-valuenow'))).toBe('100');
    expect(shotTaken).toBe(true);
  }, 40_000);

  it('cancels a running task from its row', async () => {
    const id = await createTask({ ms: 60_000, steps: 60 });
    const row = `tr[data-task-id="${id}"]`;
    await page.waitForSelector(`${row}[data-status="running"]`, { timeout: 15_000 });
    await page.click(`${row} [data-testid="cancel"]`);
    await page.waitForSelector(`${row}[data-status="cancelled"]`, { timeout: 10_000 });
    expect(await statusOf(id)).toBe('cancelled');
    await page.waitForSelector(`${row} [data-testid="retry"]`);
  }, 30_000);

  it('opens a task’s timeline', async () => {
    const [first] = (await h.call('GET', '/v1/tasks?status=succeeded&limit=1')).body.items;
    await page.click(`tr[data-task-id="${first.id}"] a`);
    await page.waitForSelector('[data-testid="task-detail"][data-status="succeeded"]');
    await page.locator('[data-testid="timeline"] li').nth(2).waitFor();
    const lines = await page.$$eval('[data-testid="timeline"] li', (lis) => lis.map((li) => li.textContent ?? ''));
    expect(lines[0]).toMatch(/∅ → queued/);
    expect(lines.at(-1)).toMatch(/running → succeeded.*console-w1/);
    await shot('task-timeline');
  }, 20_000);

  it('shows queue depths with a chart of the last minutes', async () => {
    await open('queues');
    const work = topology.workQueue('demo.sleep');
    await page.waitForSelector(`tr[data-queue="${work}"]`);
    // Two samples (3 s apart) draw a line.
    // attached, not visible: a queue that stayed empty draws a flat line, a box of zero height.
    await page.waitForSelector(`tr[data-queue="${work}"] svg polyline`, { state: 'attached', timeout: 15_000 });
    const names = await page.$$eval('[data-testid="queues-table"] tbody tr', (trs) =>
      trs.map((tr) => tr.getAttribute('data-queue')),
    );
    expect(names).toEqual([
      ...BUILTIN_TASK_TYPES.map((t) => topology.workQueue(t.type)),
      ...topology.queues.retry.map((t) => t.name),
      topology.queues.dead,
      topology.queues.unrouted,
    ]);
    await shot('queues');
  }, 30_000);

  it('redrives a dead letter: its task runs again and succeeds', async () => {
    const id = await createTask({ ms: 10 });
    await waitFor('the task to succeed first', async () => (await statusOf(id)) === 'succeeded', 15_000);
    // Make it a failed task with a dead letter, as a worker would after its last attempt.
    await h.t.db.query(
      `UPDATE tasks SET status = 'failed', error = '{"code":"TASK.MAX_ATTEMPTS","message":"gave up"}'::jsonb WHERE id = $1`,
      [id],
    );
    const reason = {
      code: 'TASK.MAX_ATTEMPTS',
      message: 'attempts exhausted: boom',
      queue: topology.workQueue('demo.sleep'),
      routingKey: 'demo.sleep',
    };
    await publisher.publishDeadLetter(
      Buffer.from(JSON.stringify({ v: 1, taskId: id, type: 'demo.sleep' })),
      { correlationId: id, headers: {} } as MessageProperties,
      reason,
    );
    await publisher.publishDeadLetter(Buffer.from('{"garbage":'), { headers: {} } as MessageProperties, {
      ...reason,
      code: 'MESSAGE.MALFORMED',
      message: 'body is not JSON',
    });

    await open('dead-letters');
    const row = `[data-testid="dead-table"] tr[data-task-id="${id}"]`;
    await page.waitForSelector(row);
    await page.waitForSelector('[data-testid="dead-table"] tr.malformed');
    await shot('dead-letters');
    await page.click(`${row} [data-testid="redrive-one"]`);
    await page.waitForSelector('[data-testid="redrive-outcome"]');
    expect(await page.textContent('[data-testid="redrive-outcome"]')).toContain('redriven 1');
    await page.waitForSelector(row, { state: 'detached' });
    await waitFor('the redriven task to succeed', async () => (await statusOf(id)) === 'succeeded', 15_000);
    expect(
      (await h.call('GET', '/v1/admin/dead-letters')).body.items.map((m: { malformed: boolean }) => m.malformed),
    ).toEqual([true]);
  }, 40_000);

  it('lists unrouted messages by type; one of a type the worker serves is redriven to it without an operator', async () => {
    // A type no worker serves here (no SQL target): it stays, shown by type.
    const orphan = '00000000-0000-4000-8000-0000000000c1';
    await publisher.publish(
      topology.exchanges.unrouted,
      'sql.query',
      { v: 1, taskId: orphan, type: 'sql.query' },
      { correlationId: orphan },
    );
    await open('unrouted');
    await page.waitForSelector(`[data-testid="unrouted-table"] tr[data-task-id="${orphan}"]`);
    await page.waitForSelector('[data-testid="unrouted-by-type"] tr[data-type="sql.query"]');
    await shot('unrouted');
    // A queued demo.sleep task whose message reached unrouted (as before its worker first bound):
    // the worker serving demo.sleep redrives it within seconds, and the task runs.
    const id = await createTask({ ms: 10 });
    await waitFor('the task to succeed', async () => (await statusOf(id)) === 'succeeded', 15_000);
    await h.t.db.query(`UPDATE tasks SET status = 'queued', finished_at = NULL WHERE id = $1`, [id]);
    await publisher.publish(
      topology.exchanges.unrouted,
      'demo.sleep',
      { v: 1, taskId: id, type: 'demo.sleep' },
      { correlationId: id },
    );
    await waitFor('the unrouted task to be redriven and run', async () => (await statusOf(id)) === 'succeeded', 15_000);
    await page.waitForSelector(`[data-testid="unrouted-table"] tr[data-task-id="${id}"]`, {
      state: 'detached',
      timeout: 10_000,
    });
    // What stays can still be redriven by hand; still unserved, it comes back through the alternate exchange.
    await page.click('[data-testid="redrive-all"]');
    await page.waitForSelector('[data-testid="redrive-outcome"]');
    expect(await page.textContent('[data-testid="redrive-outcome"]')).toContain('redriven 1');
    await waitFor(
      'the unserved message back in unrouted',
      async () => (await h.call('GET', '/v1/admin/unrouted')).body.total === 1,
      5000,
    );
  }, 45_000);

  it('shows workers alive against expected, with a warning below it', async () => {
    await open('workers');
    await page.waitForSelector('[data-testid="fleet-summary"]');
    expect((await page.textContent('[data-testid="fleet-summary"]'))?.replace(/\s+/g, ' ')).toContain(
      '1 alive of 2 expected',
    );
    await page.waitForSelector('[data-testid="fleet-warning"]');
    await page.waitForSelector('[data-testid="workers-banner"]');
    expect(await page.textContent('[data-testid="workers-table"]')).toContain('console-w1');
    await shot('workers');
  }, 20_000);

  it('lists problem reports', async () => {
    const [task] = (await h.call('GET', '/v1/tasks?status=cancelled&limit=1')).body.items;
    const r = await h.call('POST', `/v1/tasks/${task.id}/reports`, {
      key: alice,
      body: { message: 'I cancelled this by mistake; can it be resumed?' },
    });
    expect(r.status).toBe(201);
    await open('reports');
    await page.locator('[data-testid="reports-table"]', { hasText: 'by mistake' }).waitFor();
    await shot('reports');
    await open('tasks');
    await page.waitForSelector('[data-testid="tasks-table"] tbody tr');
  }, 20_000);
});
