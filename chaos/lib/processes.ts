/**
 * Process control for the chaos harness: a private PostgreSQL cluster and a private RabbitMQ
 * node (never the shared ones on 5432/5672), and the built api/worker bundles as real processes.
 * Everything started here is recorded in a state file so a crashed run can be cleaned up by the next.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AppProcess, type AppName, type Exit, freePort, GiveUp, isPortFree, waitFor } from '@tasksys/testing';

const run = promisify(execFile);

export const ROOT = resolve(__dirname, '../..');
export const LOG_DIR = join(ROOT, 'tmp/chaos-logs');
const STATE_FILE = join(ROOT, 'tmp/chaos-state.json');
const PG_BIN = '/usr/lib/postgresql/15/bin';
const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const RABBIT_HOME = '/var/lib/rabbitmq'; // holds the Erlang cookie rabbitmqctl needs

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A port p in [30000, 45000) with p and p + 20000 free (AMQP + Erlang distribution). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 30000 + Math.floor(Math.random() * 15000);
    if ((await isPortFree(p)) && (await isPortFree(p + 20000))) return p;
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
    await rabbitctl(s.rabbit.node, ['stop'], 30_000)
      .then(() => log(`stopped stale node ${s.rabbit?.node}`))
      .catch(() => undefined);
    rmSync(s.rabbit.dir, { recursive: true, force: true });
  }
  if (s.pg) {
    await run('runuser', [
      '-u',
      'postgres',
      '--',
      `${PG_BIN}/pg_ctl`,
      '-D',
      join(s.pg.dir, 'data'),
      '-m',
      'immediate',
      '-w',
      'stop',
    ])
      .then(() => log(`stopped stale PostgreSQL in ${s.pg?.dir}`))
      .catch(() => undefined);
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
  return process.getuid?.() === 0
    ? run('runuser', ['-u', user, '--', cmd, ...args], { timeout })
    : run(cmd, args, { timeout });
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
    return [
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off`,
      '-l',
      join(this.dir, 'pg.log'),
    ];
  }

  async start(): Promise<void> {
    this.port = await freePort();
    if (process.getuid?.() === 0) chownSync(this.dir, uidOf('postgres'), gidOf('postgres'));
    updateState((s) => (s.pg = { dir: this.dir, port: this.port }));
    await asUser('postgres', `${PG_BIN}/initdb`, [
      '-D',
      join(this.dir, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      '-N',
    ]);
    await this.ctl(['start']);
    await asUser('postgres', `${PG_BIN}/psql`, [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-U',
      'postgres',
      '-c',
      'CREATE DATABASE tasks',
    ]);
  }

  private ctl(args: string[]) {
    return asUser('postgres', `${PG_BIN}/pg_ctl`, [
      '-D',
      join(this.dir, 'data'),
      '-w',
      '-t',
      '60',
      ...args,
      ...(args[0] === 'stop' ? [] : this.opts()),
    ]);
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
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(':')[2]);
}
function gidOf(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line.split(':')[3]);
}

// ---------------------------------------------------------------- RabbitMQ

function rabbitctl(node: string, args: string[], timeout = 60_000) {
  const env = { ...process.env, HOME: RABBIT_HOME };
  const cmd = `${RABBIT_BIN}/rabbitmqctl`;
  const full = ['-n', node, ...args];
  return process.getuid?.() === 0
    ? run('runuser', ['-u', 'rabbitmq', '--', 'env', `HOME=${RABBIT_HOME}`, cmd, ...full], {
        timeout,
        cwd: RABBIT_HOME,
      })
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
        ? spawn('runuser', ['-u', 'rabbitmq', '--', 'env', ...envArgs, `${RABBIT_BIN}/rabbitmq-server`], {
            cwd: RABBIT_HOME,
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn(`${RABBIT_BIN}/rabbitmq-server`, [], {
            env: { ...process.env, ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    this.server.stdout?.pipe(out);
    this.server.stderr?.pipe(out);
    await waitFor(
      `RabbitMQ node ${this.node}`,
      async () => {
        if (this.server?.exitCode !== null) throw new GiveUp(`rabbitmq-server exited; see ${LOG_DIR}/rabbitmq.out.log`);
        await rabbitctl(this.node, ['await_startup', '-t', '5'], 15_000);
        return true;
      },
      120_000,
      1000,
    );
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
      await waitFor('rabbitmq-server exit', () => this.server?.exitCode !== null, 20_000).catch(() =>
        this.server?.kill('SIGKILL'),
      );
    }
    rmSync(this.dir, { recursive: true, force: true });
    updateState((s) => delete s.rabbit);
  }
}

// ---------------------------------------------------------------- api / worker processes

/**
 * An api or worker of the stack: the test helpers' AppProcess (log in tmp/chaos-logs, restartable
 * under the same name and port) plus what the supervisor and the clean-up of a crashed run need.
 */
export class ChaosProcess extends AppProcess {
  /** Set when the harness itself stops the process (kill -9 on purpose). */
  expectedExit = false;
  /** The supervisor leaves it down while set (a scenario keeps it stopped on purpose). */
  keepDown = false;

  constructor(name: string, app: AppName, port: number, env: Record<string, string>) {
    super({ name, app, port, env, logDir: LOG_DIR });
  }

  override spawn(): void {
    this.expectedExit = false;
    super.spawn();
    const pid = this.pid;
    updateState((s) => (s.pids = [...(s.pids ?? []).filter((p) => p !== pid), pid]));
  }

  /** A loaded stack starts slowly: 90 s. */
  override ready(timeoutMs = 90_000): Promise<void> {
    return super.ready(timeoutMs);
  }

  override async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    this.expectedExit = true;
    const exit = await super.kill(signal);
    const pid = this.pid;
    updateState((s) => (s.pids = (s.pids ?? []).filter((p) => p !== pid)));
    return exit;
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
