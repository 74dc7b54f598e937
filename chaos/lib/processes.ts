/**
 * Process control for the chaos harness: a private PostgreSQL cluster and a private RabbitMQ
 * node (never the shared ones on 5432/5672), and the built api/worker bundles as real processes.
 * Everything started here is recorded in a state file so a crashed run can be cleaned up by the next.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = resolve(__dirname, '../..');
export const LOG_DIR = join(ROOT, 'tmp/chaos-logs');
const STATE_FILE = join(ROOT, 'tmp/chaos-state.json');
const PG_BIN = '/usr/lib/postgresql/15/bin';
const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const RABBIT_HOME = '/var/lib/rabbitmq'; // holds the Erlang cookie rabbitmqctl needs

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Thrown from a `waitFor` check to give up at once (e.g. the process being waited for died). */
export class Fatal extends Error {}

/** Polls `check` until it returns a truthy value or the deadline passes; a `Fatal` error ends it at once. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once('error', () => ok(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
    srv.on('error', fail);
  });
}

/** A port p in [30000, 45000) with p and p + 20000 free (AMQP + Erlang distribution). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 30000 + Math.floor(Math.random() * 15000);
    if ((await portFree(p)) && (await portFree(p + 20000))) return p;
  }
  throw new Error('no free port pair for the private RabbitMQ node');
}

// ---------------------------------------------------------------- state file (stale cleanup)

interface ChaosState {
  pg?: { dir: string; port: number };
  rabbit?: { node: string; dir: string };
  pids?: number[];
}

function readState(): ChaosState {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ChaosState;
  } catch {
    return {};
  }
}
function writeState(s: ChaosState): void {
  mkdirSync(join(ROOT, 'tmp'), { recursive: true });
  writeFileSync(STATE_FILE, JSON.stringify(s, null, 2));
}
function updateState(f: (s: ChaosState) => void): void {
  const s = readState();
  f(s);
  writeState(s);
}

/** Best effort: stop what a previous, crashed run left behind (recorded in tmp/chaos-state.json). */
export async function cleanStale(log: (m: string) => void): Promise<void> {
  const s = readState();
  for (const pid of s.pids ?? []) {
    try {
      // only our own node processes: check the command line before killing
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('dist/apps/')) {
        process.kill(pid, 'SIGKILL');
        log(`killed stale process ${pid}`);
      }
    } catch {
      /* gone */
    }
  }
  if (s.rabbit) {
    await rabbitctl(s.rabbit.node, ['stop'], 30_000).then(() => log(`stopped stale node ${s.rabbit?.node}`)).catch(() => undefined);
    rmSync(s.rabbit.dir, { recursive: true, force: true });
  }
  if (s.pg) {
    await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', join(s.pg.dir, 'data'), '-m', 'immediate', '-w', 'stop']).then(() => log(`stopped stale PostgreSQL in ${s.pg?.dir}`)).catch(() => undefined);
    rmSync(s.pg.dir, { recursive: true, force: true });
  }
  writeState({});
}

/** After a clean teardown no process of ours is left to remember. */
export function forgetPids(): void {
  updateState((s) => (s.pids = []));
}

// ---------------------------------------------------------------- PostgreSQL

function asUser(user: string, cmd: string, args: string[], timeout = 60_000) {
  return process.getuid?.() === 0 ? run('runuser', ['-u', user, '--', cmd, ...args], { timeout }) : run(cmd, args, { timeout });
}

export class PrivatePostgres {
  readonly dir: string;
  port = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'chaos-pg-'));
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/tasks`;
  }

  private opts(): string[] {
    return ['-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off`, '-l', join(this.dir, 'pg.log')];
  }

  async start(): Promise<void> {
    this.port = await freePort();
    if (process.getuid?.() === 0) chownSync(this.dir, uidOf('postgres'), gidOf('postgres'));
    updateState((s) => (s.pg = { dir: this.dir, port: this.port }));
    await asUser('postgres', `${PG_BIN}/initdb`, ['-D', join(this.dir, 'data'), '-U', 'postgres', '--auth=trust', '-N']);
    await this.ctl(['start']);
    await asUser('postgres', `${PG_BIN}/psql`, ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-c', 'CREATE DATABASE tasks']);
  }

  private ctl(args: string[]) {
    return asUser('postgres', `${PG_BIN}/pg_ctl`, ['-D', join(this.dir, 'data'), '-w', '-t', '60', ...args, ...(args[0] === 'stop' ? [] : this.opts())]);
  }

  /** `immediate` is a crash: no checkpoint, connections cut; recovery replays the WAL. */
  stop(mode: 'fast' | 'immediate' = 'immediate') {
    return this.ctl(['stop', '-m', mode]);
  }
  startAgain() {
    return this.ctl(['start']);
  }

  async destroy(): Promise<void> {
    await this.ctl(['stop', '-m', 'immediate']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
    updateState((s) => delete s.pg);
  }
}

function uidOf(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(':')[2]);
}
function gidOf(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(':')[3]);
}

// ---------------------------------------------------------------- RabbitMQ

function rabbitctl(node: string, args: string[], timeout = 60_000) {
  const env = { ...process.env, HOME: RABBIT_HOME };
  const cmd = `${RABBIT_BIN}/rabbitmqctl`;
  const full = ['-n', node, ...args];
  return process.getuid?.() === 0
    ? run('runuser', ['-u', 'rabbitmq', '--', 'env', `HOME=${RABBIT_HOME}`, cmd, ...full], { timeout, cwd: RABBIT_HOME })
    : run(cmd, full, { timeout, env });
}

export class PrivateRabbit {
  readonly node = `chaos-${process.pid}-${Math.random().toString(36).slice(2, 8)}@localhost`;
  readonly dir: string;
  port = 0;
  private server?: ChildProcess;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'chaos-rabbit-'));
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePortPair();
    writeFileSync(join(this.dir, 'rabbitmq.conf'), `listeners.tcp.default = ${this.port}\nloopback_users = none\n`);
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
    if (process.getuid?.() === 0) {
      const [u, g] = [uidOf('rabbitmq'), gidOf('rabbitmq')];
      for (const f of ['', 'rabbitmq.conf', 'enabled_plugins']) chownSync(join(this.dir, f), u, g);
    }
    updateState((s) => (s.rabbit = { node: this.node, dir: this.dir }));
    const env = {
      HOME: RABBIT_HOME,
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.port + 20000),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.dir, 'pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq'),
    };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const out = createWriteStream(join(LOG_DIR, 'rabbitmq.out.log'));
    this.server =
      process.getuid?.() === 0
        ? spawn('runuser', ['-u', 'rabbitmq', '--', 'env', ...envArgs, `${RABBIT_BIN}/rabbitmq-server`], { cwd: RABBIT_HOME, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(`${RABBIT_BIN}/rabbitmq-server`, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.server.stdout?.pipe(out);
    this.server.stderr?.pipe(out);
    await waitFor(`RabbitMQ node ${this.node}`, async () => {
      if (this.server?.exitCode !== null) throw new Fatal(`rabbitmq-server exited; see ${LOG_DIR}/rabbitmq.out.log`);
      await rabbitctl(this.node, ['await_startup', '-t', '5'], 15_000);
      return true;
    }, 120_000, 1000);
  }

  ctl(...args: string[]) {
    return rabbitctl(this.node, args);
  }
  stopApp() {
    return this.ctl('stop_app');
  }
  startApp() {
    return this.ctl('start_app');
  }
  closeAllConnections() {
    return this.ctl('close_all_connections', 'chaos: server-side close');
  }

  async destroy(): Promise<void> {
    await this.ctl('stop').catch(() => undefined);
    if (this.server && this.server.exitCode === null) {
      await waitFor('rabbitmq-server exit', () => this.server?.exitCode !== null, 20_000).catch(() => this.server?.kill('SIGKILL'));
    }
    rmSync(this.dir, { recursive: true, force: true });
    updateState((s) => delete s.rabbit);
  }
}

// ---------------------------------------------------------------- api / worker processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class AppProcess {
  child!: ChildProcess;
  exited!: Promise<Exit>;
  /** Set when the harness itself stops the process (kill -9 on purpose). */
  expectedExit = false;
  /** The supervisor leaves it down while set (a scenario keeps it stopped on purpose). */
  keepDown = false;

  constructor(
    readonly name: string,
    readonly kind: 'api' | 'worker',
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get main(): string {
    return join(ROOT, `dist/apps/${this.kind}/main.js`);
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  get healthUrl(): string {
    return `http://127.0.0.1:${this.port}/health/ready`;
  }

  spawn(): void {
    if (!existsSync(this.main)) throw new Error(`${this.main} is missing: run \`npm run build\` first`);
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(join(LOG_DIR, `${this.name}.log`), { flags: 'a' });
    this.expectedExit = false;
    this.child = spawn(process.execPath, [this.main], { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    this.child.stdout?.pipe(log);
    this.child.stderr?.pipe(log);
    this.exited = new Promise<Exit>((ok) => this.child.once('exit', (code, signal) => ok({ code, signal })));
    const pid = this.pid;
    updateState((s) => (s.pids = [...(s.pids ?? []).filter((p) => p !== pid), pid]));
  }

  async ready(timeoutMs = 90_000): Promise<void> {
    await waitFor(`${this.name} ready`, async () => {
      if (!this.alive) throw new Fatal(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}); see tmp/chaos-logs/${this.name}.log`);
      const res = await fetch(this.healthUrl, { signal: AbortSignal.timeout(2000) });
      return res.ok;
    }, timeoutMs, 250);
  }

  async start(timeoutMs?: number): Promise<void> {
    this.spawn();
    await this.ready(timeoutMs);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    this.expectedExit = true;
    if (this.alive) this.child.kill(signal);
    const e = await this.exited;
    const pid = this.pid;
    updateState((s) => (s.pids = (s.pids ?? []).filter((p) => p !== pid)));
    return e;
  }

  /** Resident set size in MiB from /proc/<pid>/status (VmRSS). */
  rssMiB(): number | null {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : null;
    } catch {
      return null;
    }
  }
}
