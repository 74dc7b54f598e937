import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GiveUp, waitFor } from './wait-for';
import { TEST_LOG_DIR, WORKSPACE_ROOT } from './workspace';

export type AppName = 'api' | 'worker';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AppProcessOptions {
  /** Names the log file (`<logDir>/<name>.log`); a worker's WORKER_ID unless env sets one. */
  name: string;
  app: AppName;
  /** Where /health/ready answers: the api's PORT, the worker's WORKER_HEALTH_PORT. */
  port: number;
  /** On top of this process's environment. */
  env?: Record<string, string>;
  /** tmp/test-logs by default. */
  logDir?: string;
  /** The script node runs: the app's built bundle, dist/apps/<app>/main.js, by default. */
  main?: string;
}

/** The variable each app reads its health port from. */
const PORT_VARIABLE: Record<AppName, string> = { api: 'PORT', worker: 'WORKER_HEALTH_PORT' };

/**
 * A built app (`npx nx run-many -t build -p api worker` first) as a real process: its output in
 * a log file, ready once its /health/ready answers 200, stopped by a signal with its exit awaited.
 * `spawn` again after it exited starts a fresh process under the same name, port and log file.
 */
export class AppProcess {
  readonly name: string;
  readonly app: AppName;
  readonly port: number;
  readonly main: string;
  readonly logFile: string;
  child!: ChildProcess;
  exited!: Promise<Exit>;
  private readonly env: Record<string, string>;
  private spawned = 0;

  constructor(options: AppProcessOptions) {
    this.name = options.name;
    this.app = options.app;
    this.port = options.port;
    this.main = options.main ?? join(WORKSPACE_ROOT, `dist/apps/${options.app}/main.js`);
    this.logFile = join(options.logDir ?? TEST_LOG_DIR, `${options.name}.log`);
    this.env = {
      [PORT_VARIABLE[options.app]]: String(options.port),
      ...(options.app === 'worker' ? { WORKER_ID: options.name } : {}),
      ...options.env,
    };
  }

  /** http://127.0.0.1:<port> */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.child?.pid ?? -1;
  }
  /** Started and not exited (a stopped, SIGSTOPped process is alive). */
  get alive(): boolean {
    return this.spawned > 0 && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process without waiting for it (a test of start-up itself waits its own way). */
  spawn(): void {
    if (this.alive) throw new Error(`${this.name} is running already (pid ${this.pid})`);
    if (!existsSync(this.main)) {
      throw new Error(`${this.main} is missing: run \`npx nx run-many -t build -p api worker\` first`);
    }
    mkdirSync(join(this.logFile, '..'), { recursive: true });
    // A fresh log per test run; a restart appends to it, so one file tells the process's whole story.
    const log = createWriteStream(this.logFile, { flags: this.spawned++ ? 'a' : 'w' });
    const child = spawn(process.execPath, [this.main], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: WORKSPACE_ROOT,
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    this.exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits for /health/ready to answer 200; fails at once if the process exits meanwhile. */
  async ready(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${this.name} ready on ${this.url}/health/ready`,
      async () => {
        if (!this.alive) {
          const how = this.child.exitCode ?? this.child.signalCode;
          throw new GiveUp(
            `${this.name} exited (${how}) before it was ready; see ${relative(WORKSPACE_ROOT, this.logFile)}`,
          );
        }
        return (await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(2000) })).ok;
      },
      timeoutMs,
      200,
    );
  }

  async start(readyTimeoutMs?: number): Promise<this> {
    this.spawn();
    await this.ready(readyTimeoutMs);
    return this;
  }

  /** Sends `signal` (if it is still running) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (!this.spawned) throw new Error(`${this.name} was never started`);
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }

  /**
   * SIGTERM, and SIGKILL if it has not exited after `graceMs`; with 0, SIGKILL at once. Resolves
   * at once for a process never started.
   */
  async stop(graceMs = 0): Promise<Exit | undefined> {
    if (!this.spawned) return undefined;
    if (graceMs <= 0) return this.kill('SIGKILL');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }
}
