import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { waitFor } from './wait-for';

const run = promisify(execFile);

/** The Debian package's own scripts: /usr/sbin's wrappers would `su rabbitmq` and use its cookie. */
const RABBITMQ_BIN = process.env['TEST_RABBITMQ_BIN'] ?? '/usr/lib/rabbitmq/bin';
/** Every private cluster lives under here, one folder per cluster, so a later run finds a crashed one's leftovers. */
export const CLUSTER_ROOT = join(tmpdir(), 'tasksys-rabbitmq-clusters');
/** Node names start with this; the shared broker (rabbit@<host>) never does. */
const NODE_PREFIX = 'tsys-';

export interface ClusterNode {
  /** 1-based. */
  index: number;
  /** Erlang node name, `tsys-<id>-<index>@localhost`. */
  name: string;
  amqpPort: number;
  distPort: number;
  /** `amqp://guest:guest@127.0.0.1:<amqpPort>`. */
  url: string;
  /** The beam.smp process while the node runs, else undefined. */
  pid: number | undefined;
}

export interface RabbitmqClusterOptions {
  /** Nodes (3 unless told). */
  size?: number;
  /** Extra lines of rabbitmq.conf for every node. */
  config?: string[];
  /**
   * `pause_minority` (default, what production wants: a cut-off node stops serving) or `ignore`, to keep
   * a lone node serving so a test sees what a queue without a majority does to publishes.
   */
  partitionHandling?: 'pause_minority' | 'ignore';
  /** How long one node may take to boot. */
  bootTimeoutMs?: number;
  /** Progress lines (a node up, the cluster formed), for a suite that reports how long they took. */
  log?: (line: string) => void;
}

interface Owner {
  /** The process that started the cluster; when it is gone, the cluster is a leftover. */
  pid: number;
  nodes: string[];
}

/**
 * A private RabbitMQ cluster on this machine, for tests and the chaos suite: its own node names,
 * ports, cookie, data and log dirs (under CLUSTER_ROOT/<id>), so the shared node is never touched.
 * Nodes 2..n join node 1 at first boot through classic-config peer discovery (what the compose
 * cluster does), which spares six CLI runs (stop_app, join_cluster, start_app) of ~1 s of CPU each.
 *
 * ```ts
 * const cluster = await RabbitmqCluster.start();
 * try { ... cluster.kill9(await cluster.leaderOf('q')) ... } finally { await cluster.stopAll(); }
 * ```
 */
export class RabbitmqCluster {
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly nodes: ClusterNode[],
    private readonly ctlPortMin: number,
    private readonly bootTimeoutMs: number,
  ) {}

  /** Starts a cluster and waits until every node runs and is a member. Removes dead runs' leftovers first. */
  static async start(options: RabbitmqClusterOptions = {}): Promise<RabbitmqCluster> {
    await RabbitmqCluster.removeLeftovers();
    const size = options.size ?? 3;
    const id = randomBytes(3).toString('hex');
    const dir = join(CLUSTER_ROOT, id);
    mkdirSync(dir, { recursive: true });
    // One cookie for the cluster (HOME decides where Erlang reads it), known only to this run.
    writeFileSync(join(dir, '.erlang.cookie'), randomBytes(20).toString('hex'), { mode: 0o400 });
    const nodes: ClusterNode[] = [];
    for (let index = 1; index <= size; index++) {
      const amqpPort = await freePort();
      const distPort = await freePort();
      nodes.push({
        index,
        name: `${NODE_PREFIX}${id}-${index}@localhost`,
        amqpPort,
        distPort,
        url: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
        pid: undefined,
      });
    }
    const owner: Owner = { pid: process.pid, nodes: nodes.map((n) => n.name) };
    writeFileSync(join(dir, 'owner.json'), JSON.stringify(owner));
    for (const node of nodes) {
      const nodeDir = join(dir, `n${node.index}`);
      mkdirSync(nodeDir, { recursive: true });
      writeFileSync(join(nodeDir, 'env.conf'), ''); // not /etc/rabbitmq/rabbitmq-env.conf (the shared node's)
      writeFileSync(join(nodeDir, 'enabled_plugins'), '[].');
      writeFileSync(
        join(nodeDir, 'rabbitmq.conf'),
        [
          `listeners.tcp.default = 127.0.0.1:${node.amqpPort}`,
          'loopback_users = none',
          `cluster_name = ${NODE_PREFIX}${id}`,
          'cluster_formation.peer_discovery_backend = classic_config',
          ...nodes.map((n) => `cluster_formation.classic_config.nodes.${n.index} = ${n.name}`),
          // A node cut off from the others is a minority: pause rather than serve a split brain.
          `cluster_partition_handling = ${options.partitionHandling ?? 'pause_minority'}`,
          'consumer_timeout = 3600000',
          ...(options.config ?? []),
          '',
        ].join('\n'),
      );
    }
    // A private range for the CLI's own distribution port, away from the shared default (35672-35682).
    const ctlPortMin = 40000 + Math.floor(Math.random() * 200) * 50;
    const cluster = new RabbitmqCluster(id, dir, nodes, ctlPortMin, options.bootTimeoutMs ?? 90_000);
    try {
      // Node 1 first: the others find it at first boot and join it.
      const began = Date.now();
      const log = options.log ?? (() => undefined);
      await cluster.start(nodes[0]);
      log(`${nodes[0].name} up after ${Date.now() - began} ms`);
      await Promise.all(
        nodes.slice(1).map((n) => cluster.start(n).then(() => log(`${n.name} up after ${Date.now() - began} ms`))),
      );
      await waitFor(
        `${size} nodes running in cluster ${id}`,
        async () => (await cluster.runningNodes()).length === size,
        cluster.bootTimeoutMs,
        500,
      );
      log(`cluster ${id} of ${size} formed after ${Date.now() - began} ms`);
    } catch (err) {
      await cluster.stopAll();
      throw err;
    }
    return cluster;
  }

  /** Kills (SIGKILL) the nodes of every private cluster whose starting process is gone, and removes their dirs. */
  static async removeLeftovers(): Promise<void> {
    if (!existsSync(CLUSTER_ROOT)) return;
    for (const id of readdirSync(CLUSTER_ROOT)) {
      const dir = join(CLUSTER_ROOT, id);
      let owner: Owner | undefined;
      try {
        owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as Owner;
      } catch {
        owner = undefined;
      }
      if (owner && isAlive(owner.pid)) continue;
      for (const pid of beamPidsIn(dir)) killQuietly(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The AMQP URLs of every node, comma-separated: the cluster's RABBITMQ_URL. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  node(nameOrIndex: string | number): ClusterNode {
    const node = this.nodes.find((n) => n.name === nameOrIndex || n.index === nameOrIndex);
    if (!node) throw new Error(`no node ${String(nameOrIndex)} in cluster ${this.id}`);
    return node;
  }

  /** Starts a node that is down (after kill9 or stop) and waits for its AMQP listener. */
  async start(nodeRef: ClusterNode | string | number): Promise<void> {
    const node = typeof nodeRef === 'object' ? nodeRef : this.node(nodeRef);
    const nodeDir = join(this.dir, `n${node.index}`);
    const log = openSync(join(nodeDir, 'stdout.log'), 'a');
    const child = spawn(join(RABBITMQ_BIN, 'rabbitmq-server'), [], {
      env: {
        ...this.cliEnv(),
        RABBITMQ_NODENAME: node.name,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(node.amqpPort),
        RABBITMQ_DIST_PORT: String(node.distPort),
        RABBITMQ_CONFIG_FILE: join(nodeDir, 'rabbitmq.conf'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(nodeDir, 'enabled_plugins'),
        RABBITMQ_MNESIA_BASE: join(nodeDir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(nodeDir, 'log'),
        // One scheduler, no busy-waiting: three nodes share 2 cores with everything else.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none',
      },
      detached: true,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    child.unref();
    const pidFile = join(nodeDir, 'mnesia', `${node.name}.pid`);
    await waitFor(
      `node ${node.name} to accept AMQP on ${node.amqpPort}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}; see ${nodeDir}/stdout.log`);
        return (await canConnect(node.amqpPort)) && existsSync(pidFile);
      },
      this.bootTimeoutMs,
      250,
    );
    node.pid = Number(readFileSync(pidFile, 'utf8').trim());
  }

  /** kill -9 of a node's beam: no goodbye to its peers or clients. */
  kill9(nodeRef: ClusterNode | string | number): void {
    const node = typeof nodeRef === 'object' ? nodeRef : this.node(nodeRef);
    if (node.pid !== undefined) killQuietly(node.pid, 'SIGKILL');
    node.pid = undefined;
  }

  /** A clean stop of one node (`rabbitmqctl stop`), as a rolling restart does. */
  async stop(nodeRef: ClusterNode | string | number): Promise<void> {
    const node = typeof nodeRef === 'object' ? nodeRef : this.node(nodeRef);
    if (node.pid === undefined) return;
    const pid = node.pid;
    await this.ctl(node.name, ['stop']).catch(() => killQuietly(pid, 'SIGTERM'));
    await waitFor(`node ${node.name} to exit`, () => !isAlive(pid), 60_000, 200).catch(() =>
      killQuietly(pid, 'SIGKILL'),
    );
    node.pid = undefined;
  }

  /** The nodes the cluster reports running, asked of any node that is up. */
  async runningNodes(): Promise<string[]> {
    const out = await this.ctlAny(['cluster_status', '--formatter', 'json']);
    const status = JSON.parse(out) as { running_nodes?: string[] };
    return status.running_nodes ?? [];
  }

  /** The node holding the leader of a quorum queue (undefined while it has none). */
  async leaderOf(queue: string): Promise<ClusterNode | undefined> {
    const leaders = await this.leaders();
    const name = leaders.get(queue);
    return name ? this.nodes.find((n) => n.name === name) : undefined;
  }

  /** Every quorum queue's leader node name, by queue name. */
  async leaders(): Promise<Map<string, string>> {
    const out = await this.ctlAny(['list_queues', 'name', 'leader', '--formatter', 'json', '--quiet']);
    const rows = JSON.parse(out) as Array<{ name: string; leader?: string }>;
    return new Map(rows.filter((r) => r.leader && r.leader !== '').map((r) => [r.name, r.leader as string]));
  }

  /** Runs rabbitmqctl against one of this cluster's nodes (never another), with the cluster's cookie. */
  async ctl(nodeName: string, args: string[], timeoutMs = 60_000): Promise<string> {
    if (!this.nodes.some((n) => n.name === nodeName))
      throw new Error(`${nodeName} is not a node of cluster ${this.id}`);
    const { stdout } = await run(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', nodeName, ...args], {
      env: this.cliEnv(),
      timeout: timeoutMs,
    });
    return stdout;
  }

  /** Kills every node (SIGTERM, then SIGKILL after a grace) and removes the cluster's dir. Never throws. */
  async stopAll(): Promise<void> {
    const pids = [...new Set([...this.nodes.map((n) => n.pid), ...beamPidsIn(this.dir)])].filter(
      (p): p is number => p !== undefined,
    );
    for (const pid of pids) killQuietly(pid, 'SIGTERM');
    await waitFor('the cluster nodes to exit', () => pids.every((p) => !isAlive(p)), 15_000, 200).catch(() =>
      pids.forEach((p) => killQuietly(p, 'SIGKILL')),
    );
    for (const node of this.nodes) node.pid = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs rabbitmq-queues (quorum membership: add_member, delete_member, grow, rebalance) against one of its nodes. */
  async ctlQueues(nodeName: string, args: string[], timeoutMs = 60_000): Promise<string> {
    if (!this.nodes.some((n) => n.name === nodeName))
      throw new Error(`${nodeName} is not a node of cluster ${this.id}`);
    const { stdout } = await run(join(RABBITMQ_BIN, 'rabbitmq-queues'), ['-n', nodeName, ...args], {
      env: this.cliEnv(),
      timeout: timeoutMs,
    });
    return stdout;
  }

  /** rabbitmqctl against the first node that answers. */
  async ctlAny(args: string[]): Promise<string> {
    const up = this.nodes.filter((n) => n.pid !== undefined && isAlive(n.pid));
    let last: unknown = new Error(`no node of cluster ${this.id} is running`);
    for (const node of up) {
      try {
        return await this.ctl(node.name, args, 30_000);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  private cliEnv(): NodeJS.ProcessEnv {
    return {
      PATH: process.env['PATH'],
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: this.dir,
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'n1', 'env.conf'),
      RABBITMQ_CTL_DIST_PORT_MIN: String(this.ctlPortMin),
      RABBITMQ_CTL_DIST_PORT_MAX: String(this.ctlPortMin + 49),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** The beam pids recorded in a cluster dir, each checked to still be one of its nodes (pids get reused). */
function beamPidsIn(dir: string): number[] {
  const pids: number[] = [];
  if (!existsSync(dir)) return pids;
  for (const entry of readdirSync(dir).filter((e) => /^n\d+$/.test(e))) {
    const mnesia = join(dir, entry, 'mnesia');
    if (!existsSync(mnesia)) continue;
    for (const file of readdirSync(mnesia).filter((f) => f.startsWith(NODE_PREFIX) && f.endsWith('.pid'))) {
      const pid = Number(readFileSync(join(mnesia, file), 'utf8').trim());
      const nodeName = file.slice(0, -'.pid'.length);
      if (Number.isInteger(pid) && cmdlineOf(pid).includes(nodeName)) pids.push(pid);
    }
  }
  return pids;
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
