/**
 * The console's schedules pages in headless Chromium (Debian's `chromium`, playwright-core) against
 * the real api (harness, whose firer fires the schedules) over real PostgreSQL and RabbitMQ. The
 * console must be built (`npx nx build console`). A screenshot goes to tmp/screenshots/schedules.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { waitFor, WORKSPACE_ROOT } from '@tasksys/testing';
import { type ApiHarness, startApi, TEST_ADMIN_KEY } from '../../../testing/api-harness';
import { findConsoleDir } from './console-static';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const SHOTS = join(WORKSPACE_ROOT, process.env['SCREENSHOTS_DIR'] ?? 'tmp/screenshots');

describe('console: schedules (headless Chromium, real api, real PostgreSQL and RabbitMQ)', () => {
  let h: ApiHarness;
  let context: BrowserContext | undefined;
  let page: Page;
  let profile: string;
  let alice: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium not found at ${CHROMIUM}. Install it: apt-get install -y chromium (or set CHROMIUM_PATH).`,
      );
    const consoleDir = findConsoleDir();
    if (!consoleDir) throw new Error('The console is not built: run `npx nx build console` first');
    h = await startApi({ CONSOLE_DIR: consoleDir });
    alice = await h.newKey('alice');
    mkdirSync(SHOTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'tasksys-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      viewport: { width: 1280, height: 760 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${h.baseUrl}/console`);
    await page.fill('[data-testid="admin-key"]', TEST_ADMIN_KEY);
    await page.click('[data-testid="login"]');
    await page.waitForSelector('[data-testid="tasks-table"]');
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await h?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  }, 60_000);

  const create = async (body: Record<string, unknown>) => {
    const r = await h.call('POST', '/v1/schedules', { key: alice, body });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };

  it('lists schedules with next run, paused and last fire; pauses one; shows a schedule’s runs', async () => {
    const everySecond = await create({
      name: 'every-second',
      cron: '* * * * * *',
      task: { type: 'demo.sleep', payload: { ms: 1 } },
    });
    const nightly = await create({
      name: 'nightly',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      task: { type: 'demo.sleep', payload: { ms: 1 } },
    });
    await h.call('PATCH', `/v1/schedules/${nightly}`, { key: alice, body: { paused: true } });

    await page.click('[data-testid="nav-schedules"]');
    await page.waitForURL((url) => url.hash === '#/schedules');
    const row = (id: string) => page.locator(`tr[data-schedule-id="${id}"]`);
    await row(everySecond).waitFor();
    await row(nightly).waitFor();
    expect(await row(nightly).getAttribute('data-paused')).toBe('true');
    expect(await row(nightly).locator('[data-testid="next-run"]').textContent()).toBe('paused');
    expect(await row(nightly).textContent()).toContain('30 2 * * *');
    expect(await row(nightly).textContent()).toContain('Europe/Berlin');
    // The per-second one fires: its last fire shows up, a few seconds ago at most.
    await waitFor(
      'the last fire in the list',
      async () => /\d+ s ago/.test((await row(everySecond).locator('[data-testid="last-fire"]').textContent()) ?? ''),
      15_000,
      200,
    );

    // Pause from the console: the api says paused.
    await row(everySecond).locator('[data-testid="toggle-pause"]').click();
    await waitFor(
      'the schedule paused through the console',
      async () => (await h.call('GET', `/v1/schedules/${everySecond}`, { key: alice })).body.paused === true,
      10_000,
      100,
    );
    await waitFor(
      'the row to say paused',
      async () => (await row(everySecond).getAttribute('data-paused')) === 'true',
      10_000,
      100,
    );
    await page.screenshot({ path: join(SHOTS, 'schedules.png'), fullPage: true });

    // Its runs: every task it created, linked to the task page.
    const runs = (await h.call('GET', `/v1/tasks?scheduleId=${everySecond}&limit=100`, { key: alice })).body.items;
    expect(runs.length).toBeGreaterThan(0);
    await row(everySecond).locator('a').first().click();
    await page.waitForURL((url) => url.hash === `#/schedules/${everySecond}`);
    await page.locator('[data-testid="schedule-detail"]').waitFor();
    expect(await page.locator('[data-testid="schedule-next"]').textContent()).toBe('paused');
    await waitFor(
      'the runs table',
      async () => (await page.locator('[data-testid="schedule-runs"] tbody tr').count()) === runs.length,
      10_000,
      100,
    );
    for (const task of runs)
      await page.locator(`[data-testid="schedule-runs"] tr[data-task-id="${task.id}"]`).waitFor();
    await page.screenshot({ path: join(SHOTS, 'schedule.png'), fullPage: true });
  }, 90_000);
});
