/**
 * The system under test: private PostgreSQL + RabbitMQ, the api and N workers as real processes,
 * plus a database pool and an AMQP connection the harness uses to observe and to inject faults.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { Pool } from 'pg';
import { type Exit, freePort, waitFor } from '@tasksys/testing';
import { ChaosProcess, LOG_DIR, PrivatePostgres, PrivateRabbit, cleanStale, forgetPids, sleep } from './processes';

export const NAMESPACE = 'chaos';
export const ADMIN_KEY = 'chaos-admin-key-0123456789abcdef';

/** A broker other than the private single node (the cluster profile's private cluster). */
export interface StackBroker {
  /** RABBITMQ_URL for the apps: one URL or a comma list of nodes. */
  readonly url: string;
  /** Variables the apps need for it (RABBITMQ_QUEUE_TYPE=quorum on a cluster). */
  readonly env: Record<string, string>;
  start(): Promise<void>;
  destroy(): Promise<void>;
  describe(): string;
}

export interface ExitRecord {
  name: string;
  at: number;
  exit: Exit;
  expected: boolean;
}

export class Stack {
  readonly pg = new PrivatePostgres();
  readonly rabbit = new PrivateRabbit();
  api!: ChaosProcess;
  readonly workers: ChaosProcess[] = [];
  db!: Pool;
  readonly exits: ExitRecord[] = [];
  private seq = 0;
  private supervising = false;
  private supervisor?: Promise<void>;
  private amqp?: ChannelModel;

  constructor(
    readonly workerCount: number,
    readonly log: (m: string) => void,
    /** Instead of the private single node. */
    readonly broker?: StackBroker,
  ) {}

  /** The apps' RABBITMQ_URL (a comma list on a cluster). */
  get rabbitUrl(): string {
    return this.broker?.url ?? this.rabbit.url;
  }

  get env(): Record<string, string> {
    return {
      DATABASE_URL: this.pg.url,
      DATABASE_SCHEMA: 'public',
      DATABASE_POOL_SIZE: '10',
      RABBITMQ_URL: this.rabbitUrl,
      TASKS_NAMESPACE: NAMESPACE,
      RABBITMQ_PUBLISH_TIMEOUT_MS: '5000',
      RETRY_TIERS_MS: '200,1000,5000',
      OUTBOX_POLL_MS: '500',
      WORKER_CONCURRENCY: '20',
      WORKER_LEASE_MS: '3000',
      WORKER_SHUTDOWN_GRACE_MS: '3000',
      SWEEP_INTERVAL_MS: '2000',
      SWEEP_GRACE_MS: '5000',
      DEMO_ALLOW_CRASH: '1',
      ADMIN_API_KEY: ADMIN_KEY,
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_LEVEL: 'info',
      NODE_ENV: 'production',
      ...this.broker?.env,
    };
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.api.port}`;
  }

  async start(): Promise<void> {
    rmSync(LOG_DIR, { recursive: true, force: true });
    mkdirSync(LOG_DIR, { recursive: true });
    await cleanStale(this.log);
    const t0 = Date.now();
    await Promise.all([this.pg.start(), (this.broker ?? this.rabbit).start()]);
    const rabbit = this.broker?.describe() ?? `RabbitMQ node ${this.rabbit.node} on ${this.rabbit.port}`;
    this.log(`private PostgreSQL on ${this.pg.port}, ${rabbit} (${Date.now() - t0} ms)`);
    this.db = new Pool({ connectionString: this.pg.url, max: 5 });
    this.db.on('error', () => undefined); // the PostgreSQL scenario kills these connections on purpose
    const port = await freePort();
    this.api = new ChaosProcess('api', 'api', port, this.env); // it sets PORT
    await this.startApi(); // runs the migrations before the workers need the tables
    await Promise.all(Array.from({ length: this.workerCount }, () => this.addWorker()));
    this.log(`api and ${this.workerCount} workers ready`);
    this.superviseAll();
  }

  private watch(p: ChaosProcess): void {
    void p.exited.then((exit) => {
      this.exits.push({ name: p.name, at: Date.now(), exit, expected: p.expectedExit });
      if (!p.expectedExit)
        this.log(
          `${p.name} exited on its own: ${JSON.stringify(exit)}${exit.code === 0 ? ' (a graceful stop: SIGTERM/SIGINT from outside the harness)' : ''}`,
        );
    });
  }

  async startApi(): Promise<void> {
    this.api.keepDown = false;
    this.api.spawn();
    this.watch(this.api);
    await this.api.ready();
  }

  async addWorker(): Promise<ChaosProcess> {
    const port = await freePort();
    const name = `worker-${++this.seq}`;
    const w = new ChaosProcess(name, 'worker', port, this.env); // it sets WORKER_ID and WORKER_HEALTH_PORT
    this.workers.push(w);
    w.spawn();
    this.watch(w);
    await w.ready();
    return w;
  }

  aliveWorkers(): ChaosProcess[] {
    return this.workers.filter((w) => w.alive);
  }

  /** Restarts a worker (a fresh process, same name and port). */
  async restartWorker(w: ChaosProcess): Promise<void> {
    if (w.alive) await w.kill('SIGKILL');
    w.keepDown = false;
    w.spawn();
    this.watch(w);
    await w.ready();
  }

  /**
   * Keeps the api and the fleet up, as a process supervisor (systemd, Kubernetes) would: any
   * process that is down and not marked `keepDown` is started again. Runs for the whole run.
   */
  superviseAll(): void {
    if (this.supervising) return;
    this.supervising = true;
    const restarting = new Set<ChaosProcess>();
    this.supervisor = (async () => {
      while (this.supervising) {
        for (const p of [this.api, ...this.workers]) {
          if (p.alive || p.keepDown || restarting.has(p)) continue;
          restarting.add(p);
          this.log(`supervisor: restarting ${p.name}`);
          const again = p === this.api ? this.startApi() : this.restartWorker(p);
          void again
            .catch((e) => this.log(`restart ${p.name}: ${(e as Error).message}`))
            .finally(() => restarting.delete(p));
        }
        await sleep(200);
      }
      await waitFor('supervised restarts', () => restarting.size === 0, 120_000).catch(() => undefined);
    })();
  }
  async stopSupervising(): Promise<void> {
    this.supervising = false;
    await this.supervisor;
  }

  /** Exits the harness did not cause (and not a demo.crash, which scenarios account for). */
  unexpectedExits(since: number): ExitRecord[] {
    return this.exits.filter((e) => !e.expected && e.at >= since);
  }
  /** Exits with a failure (non-zero code or a signal) the harness did not cause. */
  crashes(since: number): ExitRecord[] {
    return this.unexpectedExits(since).filter((e) => e.exit.code !== 0);
  }

  async channel(): Promise<Channel> {
    if (!this.amqp) {
      this.amqp = await connectAny(this.rabbitUrl.split(','));
      this.amqp.on('error', () => undefined);
      this.amqp.on('close', () => (this.amqp = undefined));
    }
    return this.amqp.createChannel();
  }

  async queueDepth(queue: string): Promise<number> {
    const ch = await this.channel();
    try {
      return (await ch.checkQueue(queue)).messageCount;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /**
   * The task ids the messages of `queue` carry (a bundle counts for each of its tasks), read with
   * basic.get and all handed back when the channel closes. Nothing must consume the queue meanwhile.
   */
  async queuedTaskIds(queue: string): Promise<string[]> {
    const ch = await this.channel();
    const ids: string[] = [];
    try {
      for (let m = await ch.get(queue, { noAck: false }); m; m = await ch.get(queue, { noAck: false })) {
        // A work message body: {v: 1, taskId} or a bundle {v: 2, taskIds} (libs/messaging, task-message.ts).
        const body = JSON.parse(m.content.toString()) as { taskId?: string; taskIds?: string[] };
        ids.push(...(body.taskIds ?? (body.taskId ? [body.taskId] : [])));
      }
      return ids;
    } finally {
      await ch.close().catch(() => undefined); // unacked: all of them back in the queue
    }
  }

  /** Everything healthy again: api and every worker ready. */
  async allReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      'api and workers ready',
      async () => {
        for (const p of [this.api, ...this.workers]) {
          const r = await fetch(`${p.url}/health/ready`, { signal: AbortSignal.timeout(2000) });
          if (!r.ok) return false;
        }
        return true;
      },
      timeoutMs,
      250,
    );
  }

  async stop(): Promise<void> {
    await this.stopSupervising();
    await Promise.all([this.api, ...this.workers].filter(Boolean).map((p) => p.kill('SIGKILL').catch(() => undefined)));
    await this.amqp?.close().catch(() => undefined);
    await this.db?.end().catch(() => undefined);
    if (this.broker) rmSync(this.rabbit.dir, { recursive: true, force: true }); // never started
    await Promise.all([(this.broker ?? this.rabbit).destroy(), this.pg.destroy()]);
    forgetPids();
  }
}

/** The first node of a list that accepts a connection (a cluster with a node down). */
async function connectAny(urls: string[]): Promise<ChannelModel> {
  let last: unknown;
  for (const url of urls) {
    try {
      return await connect(url);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
