/**
 * The `tasksys` CLI as a subprocess (dist/apps/cli through apps/cli/bin/tasksys.js, as `npx tasksys`
 * runs it), against the built api and one worker over real PostgreSQL and RabbitMQ (`npm run build` first).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TasksysClient } from '@tasksys/client';
import { waitFor, WORKSPACE_ROOT } from '@tasksys/testing';
import { startSystemProcesses, type SystemProcesses } from '../test/system-processes';

const BIN = join(WORKSPACE_ROOT, 'apps/cli/bin/tasksys.js');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `env` over a clean environment (no TASKSYS_* of the caller's shell). */
function run(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TASKSYS_')));
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...clean, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tasksys ${args.join(' ')} ran over ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('tasksys CLI as a subprocess (real api, one real worker, real PostgreSQL and RabbitMQ)', () => {
  let system: SystemProcesses;
  let client: TasksysClient;
  let as: (key: string) => Record<string, string>;
  let alice: Record<string, string>;
  let admin: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(join(WORKSPACE_ROOT, 'dist/apps/cli/main.js')))
      throw new Error('dist/apps/cli/main.js is missing: run `npm run build` first');
    system = await startSystemProcesses('cli');
    as = (key) => ({ TASKSYS_URL: system.api.url, TASKSYS_KEY: key });
    admin = as(system.adminKey);
    const created = await run(['keys', 'create', 'alice'], admin);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    alice = as(created.stdout.trim());
    client = new TasksysClient({ baseUrl: system.api.url, key: alice['TASKSYS_KEY'] });
  }, 120_000);

  afterAll(() => system?.close(), 60_000);

  it('prints --help for the program and every command, exit 0', async () => {
    const commands = [
      [],
      ['submit'],
      ['get'],
      ['watch'],
      ['list'],
      ['cancel'],
      ['retry'],
      ['events'],
      ['dlq'],
      ['dlq', 'list'],
      ['dlq', 'redrive'],
      ['unrouted'],
      ['unrouted', 'list'],
      ['unrouted', 'redrive'],
      ['workers'],
      ['keys'],
      ['keys', 'create'],
    ];
    const runs = await Promise.all(commands.map((c) => run([...c, '--help'])));
    runs.forEach((r, i) => {
      expect({ command: commands[i], code: r.code }).toEqual({ command: commands[i], code: 0 });
      expect(r.stdout).toContain(`Usage: tasksys ${commands[i].join(' ')}`.trimEnd());
    });
    expect(runs[0].stdout).toContain('TASKSYS_URL');
    expect(runs[1].stdout).toMatch(/3 +--wait \/ watch: the task failed/);
    expect(runs[1].stdout).toMatch(/4 +--wait \/ watch: the task was cancelled/);
  }, 60_000);

  it('submit --wait exits 0 when the task succeeds, 3 when it fails, 4 when it is cancelled', async () => {
    const ok = await run(['submit', 'demo.sleep', '--payload', '{"ms": 300, "steps": 2}', '--wait'], alice);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^[0-9a-f-]{36} succeeded\n$/);

    const failed = await run(['submit', 'demo.sleep', '--payload', '{"ms": 0, "fatal": true}', '--wait'], alice);
    expect(failed.code).toBe(3);
    expect(failed.stdout).toMatch(/ failed: DEMO\.FATAL/);

    const waiting = run(['submit', 'demo.sleep', '--payload', '{"ms": 60000, "steps": 60}', '--wait', '--json'], alice);
    const task = await waitFor(
      'the submitted task to run',
      async () => (await client.list({ status: 'running', limit: 10 })).items[0],
      30_000,
    );
    await client.cancel(task.id);
    const cancelled = await waiting;
    expect(cancelled.code).toBe(4);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id: task.id, status: 'cancelled' });
  }, 90_000);

  it('submit prints the id; get, list, events, cancel and retry show it', async () => {
    const submitted = await run(
      ['submit', 'demo.sleep', '--payload', '{"ms": 60000}', '--priority', '7', '--idempotency-key', 'cli-key-1'],
      alice,
    );
    expect(submitted).toMatchObject({ code: 0, stderr: '' });
    const id = submitted.stdout.trim();
    expect(id).toMatch(UUID);
    const again = await run(
      ['submit', 'demo.sleep', '--payload', '{"ms": 60000}', '--priority', '7', '--idempotency-key', 'cli-key-1'],
      alice,
    );
    expect(again.stdout.trim()).toBe(id);

    const got = await run(['get', id], alice);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(new RegExp(`^id +${id}$`, 'm'));
    expect(got.stdout).toMatch(/^priority +7$/m);
    expect(JSON.parse((await run(['get', id, '--json'], alice)).stdout)).toMatchObject({ id, priority: 7 });

    const listed = await run(['list', '--type', 'demo.sleep', '--limit', '100'], alice);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID +TYPE +STATUS/);
    expect(listed.stdout).toContain(id);

    expect(await run(['cancel', id], alice)).toMatchObject({ code: 0, stdout: `${id} cancelled\n` });
    const again2 = await run(['cancel', id], alice);
    expect(again2.code).toBe(0); // cancelling a cancelled task is harmless
    const retried = await run(['retry', id], alice);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`^${id} (queued|running)\\n$`));
    await client.cancel(id);

    const events = await run(['events', id], alice);
    expect(events.code).toBe(0);
    expect(events.stdout.split('\n')[0]).toMatch(/^AT +FROM +TO +ATTEMPT +ACTOR/);
    expect(events.stdout).toMatch(/cancelled/);
    expect((await run(['events', id, '--json'], alice)).stdout).toContain('"to": "cancelled"');
  }, 60_000);

  it('watch prints plain lines when stdout is not a terminal, and exits by the task’s outcome', async () => {
    const task = await client.submit('demo.sleep', { ms: 1500, steps: 3 });
    const watched = await run(['watch', task.id], alice);
    expect(watched.code).toBe(0);
    expect(watched.stdout).not.toContain('\x1b'); // no escape sequences in a pipe
    expect(watched.stdout).not.toContain('\r');
    const lines = watched.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(`${task.id} succeeded`);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z \w+ \d+%/);
    expect(lines.some((l) => / succeeded 100%/.test(l))).toBe(true);
    expect(lines.some((l) => / running \d+%/.test(l))).toBe(true);

    const failing = await client.submit('demo.sleep', { ms: 0, fatal: true });
    expect((await run(['watch', failing.id], alice)).code).toBe(3);
  }, 60_000);

  it('watch draws a live progress bar on a terminal', async () => {
    const task = await client.submit('demo.sleep', { ms: 1500, steps: 3 });
    // util-linux script(1) gives the CLI a pseudo-terminal.
    const command = `${process.execPath} ${BIN} watch ${task.id}`;
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn('script', ['-qefc', command, '/dev/null'], {
        env: { ...process.env, ...alice, TERM: 'xterm', COLUMNS: '120' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo\.sleep \[[█░]{30}\] \d+% \| running/);
    expect(r.stdout).toContain(`${task.id} succeeded`);
  }, 60_000);

  it('fails with exit 1 and the api’s message: a bad key, an invalid payload, an unknown task, a user key on admin commands', async () => {
    const badKey = await run(['list'], as('not-a-real-key'));
    expect(badKey.code).toBe(1);
    const answer = await fetch(`${system.api.url}/v1/tasks`, { headers: { authorization: 'Bearer not-a-real-key' } });
    const { message } = (await answer.json()) as { message: string };
    expect(badKey.stderr).toBe(`tasksys: ${message} (AUTH.UNAUTHENTICATED, HTTP 401)\n`);
    expect(badKey.stdout).toBe('');

    const invalid = await run(['submit', 'demo.sleep', '--payload', '{"ms": -5}', '--wait'], alice);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^tasksys: payload\.ms.*\(REQUEST\.INVALID, HTTP 400\)\n$/);

    const unknownType = await run(['submit', 'no.such', '--payload', '{}'], alice);
    expect(unknownType).toMatchObject({ code: 1, stderr: expect.stringContaining('type must be one of') });

    const missing = await run(['get', '00000000-0000-4000-8000-000000000000'], alice);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('TASK.NOT_FOUND, HTTP 404') });

    expect(await run(['workers'], alice)).toMatchObject({ code: 1, stderr: expect.stringContaining('HTTP 403') });

    const notJson = await run(['submit', 'demo.sleep', '--payload', 'ms=1'], alice);
    expect(notJson).toMatchObject({ code: 1, stderr: expect.stringContaining('not JSON') });

    const down = await run(['list'], { TASKSYS_URL: 'http://127.0.0.1:9', TASKSYS_KEY: 'x' });
    expect(down).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('cannot reach the api at http://127.0.0.1:9'),
    });
  }, 60_000);

  it('runs the admin commands: keys create --role admin, workers, dlq and unrouted list and redrive', async () => {
    const key = await run(['keys', 'create', 'ops', '--role', 'admin', '--json'], admin);
    expect(key.code).toBe(0);
    const ops = as((JSON.parse(key.stdout) as { key: string; role: string }).key);
    expect(JSON.parse(key.stdout)).toMatchObject({ owner: 'ops', role: 'admin' });

    const workers = await run(['workers'], ops);
    expect(workers.code).toBe(0);
    expect(workers.stdout).toContain(system.worker.name);
    expect(workers.stderr).toMatch(/\d+ alive of \d+ expected/);

    const failed = await client.submit('demo.sleep', { ms: 0, fatal: true });
    await client.waitFor(failed.id, { timeoutMs: 30_000 });
    await waitFor(
      'the dead letter in `tasksys dlq list`',
      async () => (await run(['dlq', 'list'], ops)).stdout.includes(failed.id),
      30_000,
    );
    const redriven = await run(['dlq', 'redrive', '--task', failed.id, '--json'], ops);
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.stdout)).toMatchObject({ redriven: 1 });

    const unrouted = await run(['unrouted', 'list', '--json'], ops);
    expect(unrouted.code).toBe(0);
    expect(JSON.parse(unrouted.stdout)).toMatchObject({ total: expect.any(Number) });
    const redrive = await run(['unrouted', 'redrive'], ops);
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toMatch(/^REDRIVEN/);
  }, 60_000);
});
