/**
 * The broker-cluster deployment: compose's `cluster` profile (three RabbitMQ nodes, docker/rabbitmq/cluster.conf,
 * docker/compose.cluster.yml pointing the apps at them) and the Kubernetes RabbitmqCluster
 * (docker/k8s/broker/rabbitmq-cluster.yaml). Parsed as YAML and checked against each other; where the
 * `docker compose` plugin is installed, compose itself validates the merged files too.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './repo-root';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const DOCKER = join(REPO_ROOT, 'docker');
const read = (path: string) => readFileSync(join(DOCKER, path), 'utf8');

function loadYaml(path: string): Doc[] {
  const docs: Doc[] = [...(parseAllDocuments(read(path), { merge: true, prettyErrors: true } as Doc) as Doc)];
  for (const doc of docs) if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0].message}`);
  return docs.map((doc) => doc.toJS()).filter((d) => d !== null && d !== undefined);
}

/** `key = value` lines of a rabbitmq.conf (sysctl format), comments dropped. */
function confOf(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean)
      .map((l) => {
        const m = /^([a-z0-9_.]+)\s*=\s*(\S+)$/.exec(l);
        if (!m) throw new Error(`not "key = value": ${l}`);
        return [m[1], m[2]];
      }),
  );
}

const NODES = ['rabbitmq-1', 'rabbitmq-2', 'rabbitmq-3'];

describe('broker cluster deployment (docker/)', () => {
  const compose = loadYaml('compose.yml')[0];
  const override = loadYaml('compose.cluster.yml')[0];
  const cluster = confOf(read('rabbitmq/cluster.conf'));
  const single = confOf(read('rabbitmq/rabbitmq.conf'));

  it('compose has three RabbitMQ nodes in the cluster profile, on the single node image, each with its own volume', () => {
    const nodes = NODES.map((n) => compose.services[n]);
    for (const [i, node] of nodes.entries()) {
      expect(node).toBeDefined();
      expect(node.profiles).toEqual(['cluster']);
      expect(node.image).toBe(compose.services.rabbitmq.image);
      expect(node.hostname).toBe(NODES[i]);
      expect(node.healthcheck?.test).toBeDefined();
      const volumes = (node.volumes as string[]).map((v) => v.split(':'));
      expect(volumes).toEqual(
        expect.arrayContaining([
          ['./rabbitmq/rabbitmq.conf', '/etc/rabbitmq/conf.d/90-tasksys.conf', 'ro'],
          ['./rabbitmq/cluster.conf', '/etc/rabbitmq/conf.d/91-cluster.conf', 'ro'],
          [`${NODES[i]}-data`, '/var/lib/rabbitmq'],
        ]),
      );
      expect(Object.keys(compose.volumes)).toContain(`${NODES[i]}-data`);
    }
    // One Erlang cookie for all three, or they cannot talk.
    expect(new Set(nodes.map((n) => n.environment.RABBITMQ_ERLANG_COOKIE)).size).toBe(1);
    // Host ports distinct from each other and from the single node's 5672.
    const hostPorts = nodes.flatMap((n) => (n.ports as string[]).map((p) => p.split(':')[1]));
    expect(new Set([...hostPorts, '5672']).size).toBe(hostPorts.length + 1);
    // The plain `up` is unchanged: the single node has no profile.
    expect(compose.services.rabbitmq.profiles).toBeUndefined();
  });

  it('cluster.conf forms the cluster of exactly those nodes, pauses a minority, and keeps consumer_timeout', () => {
    expect(cluster['cluster_formation.peer_discovery_backend']).toBe('classic_config');
    const listed = Object.entries(cluster)
      .filter(([k]) => k.startsWith('cluster_formation.classic_config.nodes.'))
      .map(([, v]) => v);
    expect(listed).toEqual(NODES.map((n) => `rabbit@${n}`));
    expect(cluster['cluster_partition_handling']).toBe('pause_minority');
    expect(cluster['consumer_timeout']).toBe(single['consumer_timeout']);
  });

  it('compose.cluster.yml gives the api and every worker group every node, quorum queues and replicas <= nodes', () => {
    const services = override.services;
    const workerGroups = Object.entries<Doc>(compose.services)
      .filter(([, s]) => s.build?.dockerfile === 'docker/Dockerfile.worker')
      .map(([name]) => name);
    expect(Object.keys(services).sort()).toEqual(['api', ...workerGroups].sort());
    for (const [name, s] of Object.entries<Doc>(services)) {
      const urls = String(s.environment.RABBITMQ_URL).split(',');
      expect(`${name}: ${urls.map((u) => new URL(u).host).join(',')}`).toBe(
        `${name}: ${NODES.map((n) => `${n}:5672`).join(',')}`,
      );
      expect(s.environment.RABBITMQ_QUEUE_TYPE).toBe('quorum');
      expect(Number(s.environment.RABBITMQ_QUORUM_REPLICAS)).toBeLessThanOrEqual(NODES.length);
      for (const n of NODES) expect(s.depends_on[n]).toEqual({ condition: 'service_healthy' });
    }
  });

  it('`docker compose config` accepts the merged cluster files (where the compose plugin is installed)', () => {
    const version = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (version.status !== 0) {
      // No compose plugin here (the docker CLI alone answers "unknown command"): the YAML checks above stand.
      expect(version.error ?? version.stderr).toBeTruthy();
      return;
    }
    const r = spawnSync(
      'docker',
      [
        'compose',
        '-f',
        'docker/compose.yml',
        '-f',
        'docker/compose.cluster.yml',
        '--profile',
        'cluster',
        'config',
        '-q',
      ],
      { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ADMIN_API_KEY: 'x'.repeat(32) } },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('k8s: a RabbitmqCluster of 3 replicas with the broker settings, and the app settings for it', () => {
    const [rc] = loadYaml('k8s/broker/rabbitmq-cluster.yaml');
    expect(rc.apiVersion).toBe('rabbitmq.com/v1beta1');
    expect(rc.kind).toBe('RabbitmqCluster');
    expect(rc.spec.replicas).toBe(3);
    expect(rc.spec.replicas % 2).toBe(1);
    const conf = confOf(rc.spec.rabbitmq.additionalConfig);
    expect(conf['consumer_timeout']).toBe(single['consumer_timeout']);
    expect(conf['cluster_partition_handling']).toBe('pause_minority');
    const configMap = loadYaml('k8s/config.yaml').find((d) => d.kind === 'ConfigMap');
    expect(configMap.data.RABBITMQ_QUEUE_TYPE).toBe('quorum');
    expect(Number(configMap.data.RABBITMQ_QUORUM_REPLICAS)).toBe(rc.spec.replicas);
    // The documented RABBITMQ_URL names every pod of this cluster by its stable DNS name.
    const name = rc.metadata.name;
    const documented = read('k8s/broker/rabbitmq-cluster.yaml')
      .split('\n')
      .find((l) => l.includes(`${name}-server-0.`));
    for (let i = 0; i < rc.spec.replicas; i++) expect(documented).toContain(`${name}-server-${i}.${name}-nodes.`);
  });
});
