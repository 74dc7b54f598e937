import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess } from './app-process';
import { freePort } from './free-port';
import { ProcessFleet } from './process-fleet';
import { GiveUp } from './wait-for';

/**
 * A stand-in for a built app: answers /health/ready on its port once READY_AFTER_MS have passed,
 * prints its WORKER_ID, exits 0 on SIGTERM unless told to ignore it, and exits 3 at once if told to.
 */
const FAKE_APP = `
const { createServer } = require('node:http');
const env = process.env;
if (env.EXIT_AT_ONCE) process.exit(3);
const readyAt = Date.now() + Number(env.READY_AFTER_MS || 0);
console.log('started as ' + (env.WORKER_ID || 'api'));
createServer((req, res) => {
  res.statusCode = req.url === '/health/ready' && Date.now() >= readyAt ? 200 : 503;
  res.end();
}).listen(Number(env.PORT || env.WORKER_HEALTH_PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  if (env.IGNORE_SIGTERM) return;
  console.log('stopping');
  process.exit(0);
});
`;

describe('AppProcess and ProcessFleet (a stand-in app as a real process)', () => {
  let dir: string;
  let main: string;
  const started: AppProcess[] = [];
  const fleets: ProcessFleet[] = [];

  const app = async (env: Record<string, string> = {}, name = 'fake-w1') => {
    const p = new AppProcess({ name, app: 'worker', port: await freePort(), env, logDir: dir, main });
    started.push(p);
    return p;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tasksys-testing-'));
    main = join(dir, 'main.js');
    writeFileSync(main, FAKE_APP);
  });

  afterEach(async () => {
    await Promise.all([...started.splice(0).map((p) => p.stop()), ...fleets.splice(0).map((f) => f.stopAll())]);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is ready once /health/ready answers 200, with its output in <logDir>/<name>.log', async () => {
    const p = await app({ READY_AFTER_MS: '300' });
    const began = Date.now();
    await p.start();
    expect(Date.now() - began).toBeGreaterThanOrEqual(300);
    expect(p.alive).toBe(true);
    expect(readFileSync(join(dir, 'fake-w1.log'), 'utf8')).toContain('started as fake-w1'); // WORKER_ID = name
    expect(await p.stop(5000)).toEqual({ code: 0, signal: null });
    expect(readFileSync(join(dir, 'fake-w1.log'), 'utf8')).toContain('stopping');
    expect(p.alive).toBe(false);
  });

  it('fails at once, naming the log, when the process exits before it is ready', async () => {
    const p = await app({ EXIT_AT_ONCE: '1' }, 'fake-dies');
    const began = Date.now();
    const ready = p.start(30_000);
    await expect(ready).rejects.toBeInstanceOf(GiveUp);
    await expect(ready).rejects.toThrow(/fake-dies exited \(3\) before it was ready; see .*fake-dies\.log/);
    expect(Date.now() - began).toBeLessThan(5000);
  });

  it('stop sends SIGKILL after the grace when SIGTERM is ignored; kill sends the signal asked for', async () => {
    const stubborn = await (await app({ IGNORE_SIGTERM: '1' }, 'fake-stubborn')).start();
    await expect(stubborn.stop(300)).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    const killed = await (await app({}, 'fake-killed')).start();
    await expect(killed.kill('SIGINT')).resolves.toEqual({ code: null, signal: 'SIGINT' });
  });

  it('starts again under the same name and port after an exit, appending to the same log', async () => {
    const p = await (await app({}, 'fake-again')).start();
    await p.kill();
    await p.start();
    expect(readFileSync(join(dir, 'fake-again.log'), 'utf8').match(/started as/g)).toHaveLength(2);
  });

  it('refuses a bundle that was not built, saying how to build it', () => {
    const p = new AppProcess({ name: 'api', app: 'api', port: 1, main: join(dir, 'missing.js') });
    expect(existsSync(p.main)).toBe(false);
    expect(() => p.spawn()).toThrow(/missing\.js is missing: run `npx nx run-many -t build -p api worker` first/);
  });

  it('a fleet names its processes in order, each on its own port, and stops them all', async () => {
    const fleet = new ProcessFleet({
      app: 'api',
      names: 'fake-api',
      env: { READY_AFTER_MS: '100' },
      logDir: dir,
      main,
    });
    fleets.push(fleet);
    const [a, b] = await Promise.all([fleet.start(), fleet.start()]);
    expect(fleet.processes.map((p) => p.name).sort()).toEqual(['fake-api1', 'fake-api2']);
    expect(a.port).not.toBe(b.port);
    expect(fleet.alive()).toHaveLength(2);
    await fleet.stopAll(5000);
    expect(fleet.alive()).toEqual([]);
    expect(await a.exited).toEqual({ code: 0, signal: null });
  });
});
