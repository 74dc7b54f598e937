/**
 * The console's failing-webhook-endpoints page and a browser's EventSource on a stream token, in
 * headless Chromium (Debian's `chromium`, playwright-core) against the real api (`npm run build` first
 * for the console).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi, TEST_ADMIN_KEY } from '../../../testing/api-harness';
import { WebhookReceiver } from '../../../testing/webhook-receiver';
import { findConsoleDir } from './console-static';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

describe('webhooks in the console and EventSource in Chromium (real api, PostgreSQL, RabbitMQ)', () => {
  let h: ApiHarness;
  let receiver: WebhookReceiver;
  let context: BrowserContext | undefined;
  let page: Page;
  let profile: string;
  let alice: string;

  beforeAll(async () => {
    // Say exactly what is missing rather than skip.
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    const consoleDir = findConsoleDir();
    if (!consoleDir) throw new Error('The console is not built: run `npm run build` first');
    receiver = await WebhookReceiver.start();
    h = await startApi({
      CONSOLE_DIR: consoleDir,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_RETRY_BASE_MS: '200',
      WEBHOOK_POLL_MS: '100',
    });
    alice = await h.newKey('alice');
    await h.call('POST', '/v1/webhooks/secret', { key: alice });
    profile = mkdtempSync(join(tmpdir(), 'tasksys-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await h?.close();
    await receiver?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  }, 60_000);

  it('lists an endpoint whose deliveries fail, with its last error', async () => {
    receiver.script('/broken', () => 500);
    const { body: task } = await h.call('POST', '/v1/tasks', {
      key: alice,
      body: { type: 'demo.sleep', payload: { ms: 1 }, start: false, callbackUrl: receiver.url('/broken') },
    });
    await h.call('POST', `/v1/tasks/${task.id}/cancel`, { key: alice });
    await waitFor('a failed attempt at /broken', () => receiver.at('/broken').length >= 1);

    await page.goto(`${h.baseUrl}/console`);
    await page.fill('[data-testid="admin-key"]', TEST_ADMIN_KEY);
    await page.click('[data-testid="login"]');
    await page.waitForSelector('[data-testid="tasks-table"]');
    await page.click('[data-testid="nav-webhooks"]');
    const row = page.locator('[data-testid="failing-endpoint"]', { hasText: receiver.url('/broken') });
    await row.waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toContain('HTTP 500');
    expect(await row.textContent()).toContain('alice');
  }, 60_000);

  it('opens a task stream with EventSource and a stream token (no Authorization header)', async () => {
    const { body: task } = await h.call('POST', '/v1/tasks', {
      key: alice,
      body: { type: 'demo.sleep', payload: { ms: 1 }, start: false },
    });
    const { token } = (await h.call('POST', `/v1/tasks/${task.id}/stream-token`, { key: alice })).body;
    const url = `/v1/tasks/${task.id}/stream?token=${encodeURIComponent(token)}`;
    const first = await page.evaluate(
      (src) =>
        new Promise<{ id: string; status: string }>((resolve, reject) => {
          const source = new EventSource(src);
          source.addEventListener('status', (e) => {
            source.close();
            resolve({ id: (e as MessageEvent).lastEventId, status: JSON.parse((e as MessageEvent).data).status });
          });
          source.onerror = () => {
            source.close();
            reject(new Error('EventSource failed'));
          };
        }),
      url,
    );
    expect(first.status).toBe('new');
    expect(first.id).toMatch(/^\d+$/);
  }, 30_000);
});
