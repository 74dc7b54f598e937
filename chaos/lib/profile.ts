/**
 * Sizes of each scenario: `short` for CI (whole run a few minutes on 2 cores), `long` for manual runs,
 * `cluster` for the scenarios on a private 3-node RabbitMQ cluster (chaos/scenarios/cluster.ts).
 */
export interface Profile {
  name: 'short' | 'long' | 'cluster';
  workers: number;
  settleMs: number;
  workerKill: { tasks: number; durationMs: number; killEveryMs: number };
  broker: { tasks: number; downMs: number };
  postgres: { tasks: number; downMs: number };
  apiKill: { batch: number; burst: number };
  crashLoop: { healthy: number; crashing: number };
  duplicates: { tasks: number; copies: number };
  cancelStorm: { tasks: number; durationMs: number };
  fuzz: { http: number; amqp: number; concurrency: number };
  load: { perSecond: number; durationMs: number; rssGrowthMiB: number; backlogMax: number };
  brokerLost: { purged: number; reset: number };
  /** Cluster scenarios: tasks per scenario, and how long a killed node stays down. */
  cluster: { tasks: number; downMs: number };
}

export const PROFILES: Record<'short' | 'long', Profile> = {
  short: {
    name: 'short',
    workers: 3,
    settleMs: 90_000,
    workerKill: { tasks: 150, durationMs: 20_000, killEveryMs: 3_000 },
    broker: { tasks: 120, downMs: 5_000 },
    postgres: { tasks: 120, downMs: 4_000 },
    apiKill: { batch: 200, burst: 100 },
    crashLoop: { healthy: 60, crashing: 2 },
    duplicates: { tasks: 100, copies: 2 },
    cancelStorm: { tasks: 150, durationMs: 8_000 },
    fuzz: { http: 10_000, amqp: 1_000, concurrency: 16 },
    load: { perSecond: 10, durationMs: 30_000, rssGrowthMiB: 64, backlogMax: 100 },
    brokerLost: { purged: 100, reset: 200 },
    cluster: { tasks: 120, downMs: 5_000 },
  },
  long: {
    name: 'long',
    workers: 4,
    settleMs: 180_000,
    workerKill: { tasks: 1000, durationMs: 120_000, killEveryMs: 4_000 },
    broker: { tasks: 600, downMs: 15_000 },
    postgres: { tasks: 600, downMs: 10_000 },
    apiKill: { batch: 1000, burst: 400 },
    crashLoop: { healthy: 400, crashing: 5 },
    duplicates: { tasks: 600, copies: 2 },
    cancelStorm: { tasks: 800, durationMs: 40_000 },
    fuzz: { http: 30_000, amqp: 3_000, concurrency: 16 },
    load: { perSecond: 20, durationMs: 240_000, rssGrowthMiB: 64, backlogMax: 200 },
    brokerLost: { purged: 1000, reset: 600 },
    cluster: { tasks: 600, downMs: 15_000 },
  },
};

/** `--profile cluster`: the short sizes, run on a private 3-node cluster with the cluster scenarios only. */
export const CLUSTER_PROFILE: Profile = { ...PROFILES.short, name: 'cluster' };
