import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const WORKER_MAIN = resolve(__dirname, '../../../dist/apps/worker/main.js');
const LOG_DIR = resolve(__dirname, '../../../tmp/test-logs');

export interface WorkerProcess {
  name: string;
  port: number;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A free TCP port on loopback for a worker's health endpoint. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
    srv.on('error', fail);
  });
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      lastValue = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last ? `last error: ${(last as Error).message}` : `last value: ${JSON.stringify(lastValue)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Starts real worker processes from the built bundle (`npm run build` first), each with its own
 * health port and a log file under tmp/test-logs, and stops them all at the end.
 */
export class WorkerFleet {
  readonly workers: WorkerProcess[] = [];
  private seq = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly label: string,
  ) {
    if (!existsSync(WORKER_MAIN)) throw new Error(`${WORKER_MAIN} is missing: run \`npm run build\` first`);
    mkdirSync(LOG_DIR, { recursive: true });
  }

  async start(extraEnv: Record<string, string> = {}): Promise<WorkerProcess> {
    const name = `${this.label}-w${++this.seq}`;
    const port = await freePort();
    const log = createWriteStream(join(LOG_DIR, `${name}.log`));
    const child = spawn(process.execPath, [WORKER_MAIN], {
      env: { ...process.env, ...this.env, WORKER_ID: name, WORKER_HEALTH_PORT: String(port), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
      child.once('exit', (code, signal) => ok({ code, signal })),
    );
    const worker = { name, port, child, exited };
    this.workers.push(worker);
    await waitFor(`${name} ready`, async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}; see tmp/test-logs/${name}.log`);
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      return res.ok;
    }, 60_000, 200);
    return worker;
  }

  alive(): WorkerProcess[] {
    return this.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.alive().map(async (w) => {
        w.child.kill('SIGKILL');
        await w.exited;
      }),
    );
  }
}
