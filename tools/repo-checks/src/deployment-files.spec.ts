/**
 * The deployment files under docker/ (compose, Dockerfiles, broker config, Prometheus rules,
 * Grafana dashboard, Kubernetes manifests) are not run by any test here: no Docker engine or
 * cluster is available. This file parses every one of them and checks the invariants the
 * system relies on, so a broken file or a drifted value fails the normal suite.
 *
 * Nothing here imports a project (module boundaries: `type:tooling` depends on nothing of the
 * product); where a value lives in an app or lib (task timeouts, configuration variable names,
 * HTTP metric names), its source text is read and parsed instead.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './repo-root';

// Parsed YAML/JSON is untyped by nature; one alias keeps the casts in one place.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

const DOCKER = join(REPO_ROOT, 'docker');
const read = (path: string) => readFileSync(path, 'utf8');

/** The metric names the apps export (issue 8, part 3). Alerts and dashboards may use only these. */
const TASKSYS_METRICS = [
  'tasksys_tasks', // gauge {state}
  'tasksys_task_transitions_total', // {from,to}
  'tasksys_task_duration_seconds', // histogram {type,outcome}
  'tasksys_task_queue_wait_seconds', // histogram {type}
  'tasksys_publish_total', // {result="confirmed|nacked|returned|timeout"}
  'tasksys_retries_total', // {tier}
  'tasksys_dead_letters_total', // {reason}
  'tasksys_outbox_backlog',
  'tasksys_outbox_oldest_age_seconds',
  'tasksys_duplicate_deliveries_total',
  'tasksys_in_flight',
  'tasksys_workers_alive',
  'tasksys_workers_expected',
  'tasksys_queue_messages', // {queue}
  'tasksys_queue_consumers', // {queue}
];
const TASKSYS_HISTOGRAMS = ['tasksys_task_duration_seconds', 'tasksys_task_queue_wait_seconds'];

/** HTTP metrics as registered by libs/platform's middleware (read from its source). */
function httpMetrics(): { names: string[]; histograms: string[] } {
  const src = read(join(REPO_ROOT, 'libs/platform/src/lib/metrics/http-metrics.middleware.ts'));
  const found = [...src.matchAll(/metrics\.(counter|gauge|histogram)\(\{\s*name:\s*'([a-z_:]+)'/g)];
  return { names: found.map((m) => m[2]), histograms: found.filter((m) => m[1] === 'histogram').map((m) => m[2]) };
}

function allowedMetrics(): Set<string> {
  const http = httpMetrics();
  const histograms = [...TASKSYS_HISTOGRAMS, ...http.histograms];
  return new Set([
    ...TASKSYS_METRICS,
    ...http.names,
    ...histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
  ]);
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects (functions, keywords, labels and literals left out). */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ') // Grafana variables
    .replace(/(^|[^A-Za-z0-9_:])\d+(\.\d+)?(e[+-]?\d+)?([smhdwy]|ms)?(?![A-Za-z0-9_:])/gi, '$1 '); // numbers, durations
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(after)) continue; // a function or an aggregation
    if (PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/**
 * Every document of a YAML file, failing on any parse error (merge keys `<<` resolved). `yaml` is
 * a devDependency (2.x); a 1.x copy is nested under cosmiconfig, so `toJSON` (1.x) stays as the
 * fallback should the hoisted copy ever be 1.x again.
 */
function loadYamlAll(path: string): Doc[] {
  const docs: Doc[] = [...(parseAllDocuments(read(path), { merge: true, prettyErrors: true } as Doc) as Doc)];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${relative(REPO_ROOT, path)}: ${doc.errors.map((e: Doc) => e.message).join('; ')}`);
  }
  return docs.map((doc) => (typeof doc.toJS === 'function' ? doc.toJS() : doc.toJSON())).filter((d) => d !== null && d !== undefined);
}
const loadYaml = (path: string): Doc => {
  const docs = loadYamlAll(path);
  if (docs.length !== 1) throw new Error(`${relative(REPO_ROOT, path)}: expected one YAML document, found ${docs.length}`);
  return docs[0];
};

/** The longest `timeoutMs:` literal among the built-in task types (libs/tasks, read as text). */
function longestBuiltinTaskTimeoutMs(): number {
  const src = read(join(REPO_ROOT, 'libs/tasks/src/lib/task-types/builtin-task-types.ts'));
  const values = [...src.matchAll(/\btimeoutMs:\s*([\d_]+)\s*,/g)].map((m) => Number(m[1].replace(/_/g, '')));
  if (values.length === 0) throw new Error('no `timeoutMs: <number>` found in builtin-task-types.ts');
  return Math.max(...values);
}

/** Environment variables the apps read: their zod config schemas and the README's table. */
function knownEnvNames(): Set<string> {
  const sources = ['apps', 'libs']
    .flatMap((d) => files(join(REPO_ROOT, d)))
    .filter((f) => f.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(f) && !f.includes('node_modules'));
  const names = new Set<string>(['NODE_ENV']);
  for (const f of sources) {
    for (const m of read(f).matchAll(/^\s*([A-Z][A-Z0-9_]{2,}):\s*(env\.|z\.)/gm)) names.add(m[1]);
  }
  for (const m of read(join(REPO_ROOT, 'README.md')).matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)) names.add(m[1]);
  // Specified by issue 8 (admin API: workers alive against expected), being implemented; drop
  // this line once a config schema declares it.
  names.add('WORKERS_EXPECTED');
  return names;
}

/** `60s`, `1m30s`, `500ms` (compose durations) in milliseconds. */
function durationMs(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) throw new Error(`bad duration ${value}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
}

const envOf = (service: Doc): Doc => {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((kv: string) => kv.split(/=(.*)/s).slice(0, 2)));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v ?? '')]));
};
const containerEnv = (container: Doc): Doc =>
  Object.fromEntries((container.env ?? []).filter((e: Doc) => 'value' in e).map((e: Doc) => [e.name, String(e.value)]));

describe('promqlMetricNames', () => {
  it('finds metric selectors and leaves out functions, keywords, labels and literals', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.95, sum by (le, type) (rate(a_bucket{type=~"$type", x="b c"}[$__rate_interval]))) > 1e-3 and on (q) b offset 5m',
      ).sort(),
    ).toEqual(['a_bucket', 'b']);
    expect(promqlMetricNames('max(x) < max(y) / 60 unless absent(z)').sort()).toEqual(['x', 'y', 'z']);
  });
});

describe('deployment files (docker/)', () => {
  const all = files(DOCKER);

  it('every YAML and JSON file parses', () => {
    const data = all.filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(data.length).toBeGreaterThanOrEqual(12);
    for (const f of data) {
      if (f.endsWith('.json')) expect(() => JSON.parse(read(f))).not.toThrow();
      else expect(loadYamlAll(f).length).toBeGreaterThan(0);
    }
  });

  describe('compose.yml', () => {
    const compose = loadYaml(join(DOCKER, 'compose.yml'));
    const services = compose.services;
    const known = knownEnvNames();

    it('has postgres, rabbitmq, api, two workers, prometheus and grafana', () => {
      expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'rabbitmq', 'api', 'worker', 'prometheus', 'grafana']));
      expect(services.worker.deploy?.replicas).toBe(2);
      expect(envOf(services.worker).WORKERS_EXPECTED).toBe(String(services.worker.deploy.replicas));
    });

    it('serves local development as the README says (postgres and rabbitmq on 127.0.0.1, default URLs work)', () => {
      const pg = services.postgres;
      expect(pg.image).toMatch(/^postgres:16\b/);
      expect(pg.ports).toContain('127.0.0.1:5432:5432');
      expect(envOf(pg).POSTGRES_DB).toBe('tasks');
      // The default DATABASE_URL (postgres://postgres@127.0.0.1:5432/tasks) has no password.
      expect(envOf(pg).POSTGRES_HOST_AUTH_METHOD).toBe('trust');
      expect(pg.healthcheck?.test).toBeTruthy();
      expect(pg.volumes.some((v: string) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);

      const mq = services.rabbitmq;
      expect(mq.image).toMatch(/^rabbitmq:3\.13.*-management/);
      expect(mq.ports).toEqual(expect.arrayContaining(['127.0.0.1:5672:5672', '127.0.0.1:15672:15672']));
      expect(mq.healthcheck?.test).toBeTruthy();
      expect(mq.volumes.some((v: string) => /^\.\/rabbitmq\/rabbitmq\.conf:\/etc\/rabbitmq\/(conf\.d\/[\w-]+\.conf|rabbitmq\.conf)(:ro)?$/.test(v))).toBe(true);
    });

    it('publishes every port on 127.0.0.1 only', () => {
      for (const [name, s] of Object.entries<Doc>(services)) {
        for (const p of s.ports ?? []) expect(`${name} ${p}`).toMatch(new RegExp(`^${name} 127\\.0\\.0\\.1:\\d+:\\d+$`));
      }
    });

    it('mounts only files that exist', () => {
      for (const s of Object.values<Doc>(services)) {
        for (const v of s.volumes ?? []) {
          const source = String(v).split(':')[0];
          if (source.startsWith('.')) expect(existsSync(join(DOCKER, source))).toBe(true);
        }
      }
    });

    it('builds the apps from the repository root with their Dockerfiles and starts them after healthy services', () => {
      for (const [app, port] of [['api', 'PORT'], ['worker', 'WORKER_HEALTH_PORT']] as const) {
        const s = services[app];
        expect(existsSync(join(DOCKER, s.build.context, s.build.dockerfile))).toBe(true);
        expect(existsSync(join(DOCKER, s.build.context, 'package-lock.json'))).toBe(true);
        expect(s.depends_on.postgres.condition).toBe('service_healthy');
        expect(s.depends_on.rabbitmq.condition).toBe('service_healthy');
        const env = envOf(s);
        expect(new URL(env.DATABASE_URL).hostname).toBe('postgres');
        expect(new URL(env.DATABASE_URL).pathname).toBe(`/${envOf(services.postgres).POSTGRES_DB}`);
        expect(new URL(env.RABBITMQ_URL).hostname).toBe('rabbitmq');
        expect(env[port]).toMatch(/^\d+$/);
        for (const name of Object.keys(env)) expect(`${app}: ${name} ${known.has(name) ? 'is' : 'is not'} a known variable`).toBe(`${app}: ${name} is a known variable`);
      }
    });

    it('lets a worker drain: stop_grace_period is longer than WORKER_SHUTDOWN_GRACE_MS', () => {
      const grace = Number(envOf(services.worker).WORKER_SHUTDOWN_GRACE_MS);
      expect(grace).toBeGreaterThan(0);
      expect(durationMs(services.worker.stop_grace_period)).toBeGreaterThan(grace);
    });

    it('wires Prometheus and Grafana to the files in docker/', () => {
      const prom = loadYaml(join(DOCKER, 'prometheus/prometheus.yml'));
      const mounts = (s: Doc) => Object.fromEntries((s.volumes as string[]).map((v) => v.split(':').slice(0, 2)).map(([a, b]) => [a, b]));
      const pm = mounts(services.prometheus);
      expect(prom.rule_files).toContain(pm['./prometheus/alerts.yml']);
      expect(pm['./prometheus/prometheus.yml']).toBe('/etc/prometheus/prometheus.yml');

      const jobs: Doc[] = prom.scrape_configs;
      const targets = jobs.flatMap((j) => [
        ...(j.static_configs ?? []).flatMap((c: Doc) => c.targets),
        ...(j.dns_sd_configs ?? []).flatMap((c: Doc) => c.names.map((n: string) => `${n}:${c.port}`)),
      ]);
      expect(targets).toContain(`api:${envOf(services.api).PORT}`);
      expect(targets).toContain(`worker:${envOf(services.worker).WORKER_HEALTH_PORT}`);
      // Every replica is scraped on its own, not one of them through the service's address.
      expect(jobs.find((j) => (j.dns_sd_configs ?? []).some((c: Doc) => c.names.includes('worker')))).toBeTruthy();

      const gm = mounts(services.grafana);
      const provider = loadYaml(join(DOCKER, 'grafana/provisioning/dashboards/tasksys.yml'));
      expect(gm['./grafana/provisioning']).toBe('/etc/grafana/provisioning');
      expect(provider.providers[0].options.path).toBe(gm['./grafana/dashboards']);
      const datasource = loadYaml(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml')).datasources[0];
      expect(datasource.type).toBe('prometheus');
      expect(new URL(datasource.url).host).toBe('prometheus:9090');
    });
  });

  it('rabbitmq.conf sets consumer_timeout above the longest task timeout, and memory and disk limits', () => {
    const conf: Doc = Object.fromEntries(
      read(join(DOCKER, 'rabbitmq/rabbitmq.conf'))
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean)
        .map((l) => {
          const m = /^([a-z0-9_.]+)\s*=\s*(\S+)$/.exec(l);
          if (!m) throw new Error(`rabbitmq.conf: not "key = value": ${l}`);
          return [m[1], m[2]];
        }),
    );
    const longest = longestBuiltinTaskTimeoutMs();
    expect(longest).toBeGreaterThanOrEqual(3_900_000); // demo.sleep: 65 minutes
    expect(conf.consumer_timeout).toMatch(/^\d+$/);
    expect(Number(conf.consumer_timeout)).toBeGreaterThan(longest);
    expect(Object.keys(conf).some((k) => k.startsWith('vm_memory_high_watermark.'))).toBe(true);
    expect(Object.keys(conf).some((k) => k.startsWith('disk_free_limit.'))).toBe(true);
  });

  describe.each([
    ['api', 'PORT', 3000],
    ['worker', 'WORKER_HEALTH_PORT', 3001],
  ] as const)('Dockerfile.%s', (app, portVar, port) => {
    const text = read(join(DOCKER, `Dockerfile.${app}`));
    // Instructions, one per line (continuations joined), comments dropped.
    const lines = text
      .split('\n')
      .filter((l) => !l.trim().startsWith('#'))
      .join('\n')
      .replace(/\\\n\s*/g, ' ')
      .split('\n');
    const froms = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM\s/i.test(l));
    const last = lines.slice(froms[froms.length - 1][1]).join('\n');
    const first = lines.slice(0, froms[froms.length - 1][1]).join('\n');

    it('is multi-stage on Node 20 slim: builds with npm ci and nx, runs only production dependencies', () => {
      expect(froms.length).toBeGreaterThanOrEqual(2);
      expect(text).toMatch(/node:20[\w.-]*-slim/);
      expect(first).toMatch(/^RUN .*\bnpm ci\b/m);
      expect(first).toMatch(new RegExp(`^RUN .*\\bnx build ${app}\\b`, 'm'));
      expect(last).toMatch(new RegExp(`^COPY --from=\\S+ \\S*dist/apps/${app}/package\\.json \\S*dist/apps/${app}/package-lock\\.json`, 'm'));
      expect(last).toMatch(/^RUN .*\bnpm ci\b.*--omit=dev/m);
      expect(last).not.toMatch(/^RUN .*\bnpm (install|i)\b/m);
      expect(last).toMatch(/^ENV .*\bNODE_ENV=production\b/m);
    });

    it('runs as a non-root numeric user with a health check and node main.js', () => {
      const user = /^USER\s+(\S+)/m.exec(last)?.[1];
      expect(user).toBeDefined();
      expect(user).toMatch(/^[1-9]\d*(:\d+)?$/); // numeric, so Kubernetes' runAsNonRoot can verify it
      expect(last).toMatch(/^HEALTHCHECK .*\/health\/live/m);
      expect(last).toMatch(new RegExp(`^ENV ${portVar}=${port}$`, 'm'));
      expect(last).toMatch(new RegExp(`^EXPOSE ${port}$`, 'm'));
      expect(last).toMatch(/^CMD \["node", "main\.js"\]$/m);
    });

    it(`has a BuildKit ignore file (Dockerfile.${app}.dockerignore) that lets every COPY source in`, () => {
      const ignore = read(join(DOCKER, `Dockerfile.${app}.dockerignore`)).split('\n').map((l) => l.trim());
      expect(ignore).toContain('**/node_modules');
      const sources = lines
        .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
        .flatMap((l) => l.replace(/^COPY\s+(--\S+\s+)*/, '').split(/\s+/).slice(0, -1));
      expect(sources.length).toBeGreaterThan(0);
      for (const s of sources) {
        expect(`${s}: ${ignore.includes(`!${s}`) || ignore.includes(`!${s}/**`) ? 'included' : 'ignored'}`).toBe(`${s}: included`);
        expect(existsSync(join(REPO_ROOT, s))).toBe(true);
      }
    });
  });

  describe('prometheus/alerts.yml', () => {
    const rules: Doc[] = loadYaml(join(DOCKER, 'prometheus/alerts.yml')).groups.flatMap((g: Doc) => g.rules);
    const allowed = allowedMetrics();

    it('every alert says what it means and what to do, and uses only the exported metric names', () => {
      expect(rules.length).toBeGreaterThanOrEqual(5);
      expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
      for (const r of rules) {
        expect(r.alert).toMatch(/^[A-Z][A-Za-z0-9]+$/);
        expect(typeof r.annotations?.summary === 'string' && r.annotations.summary.length > 10).toBe(true);
        expect(typeof r.annotations?.description === 'string' && r.annotations.description.length > 40).toBe(true);
        expect(r.labels?.severity).toMatch(/^(critical|warning|info)$/);
        if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
        const names = promqlMetricNames(r.expr);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) expect(`${r.alert}: ${n} ${allowed.has(n) ? 'exported' : 'unknown'}`).toBe(`${r.alert}: ${n} exported`);
      }
    });

    it('covers workers below expected, dead letters, outbox lag, a work queue without consumers and the failure ratio', () => {
      const expr = (pred: (names: string[], e: string) => boolean) => rules.some((r) => pred(promqlMetricNames(r.expr), r.expr));
      expect(expr((n) => n.includes('tasksys_workers_alive') && n.includes('tasksys_workers_expected'))).toBe(true);
      expect(expr((n, e) => n.includes('tasksys_dead_letters_total') && /increase\(/.test(e))).toBe(true);
      expect(expr((n, e) => n.includes('tasksys_outbox_oldest_age_seconds') && /> *60\b/.test(e))).toBe(true);
      expect(expr((n, e) => n.includes('tasksys_queue_messages') && n.includes('tasksys_queue_consumers') && /queue=~"\.\*work"/.test(e))).toBe(true);
      expect(rules.find((r) => promqlMetricNames(r.expr).includes('tasksys_queue_consumers'))?.for).toBe('5m');
      expect(expr((n, e) => n.includes('tasksys_task_transitions_total') && /to="failed"/.test(e) && e.includes('/'))).toBe(true);
    });
  });

  describe('grafana/dashboards/tasksys.json', () => {
    const dashboard = JSON.parse(read(join(DOCKER, 'grafana/dashboards/tasksys.json')));
    const panels: Doc[] = dashboard.panels.flatMap((p: Doc) => [p, ...(p.panels ?? [])]);
    const dataPanels = panels.filter((p) => p.type !== 'row');
    const exprs: string[] = [
      ...dataPanels.flatMap((p) => p.targets.map((t: Doc) => t.expr)),
      ...dashboard.templating.list.map((v: Doc) => (typeof v.query === 'string' ? v.query : v.query.query)),
    ];
    const datasourceUid = loadYaml(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml')).datasources[0].uid;

    it('is a dashboard with unique panel ids, each querying the provisioned Prometheus', () => {
      expect(dashboard.uid).toBe('tasksys');
      expect(typeof dashboard.title).toBe('string');
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      expect(dataPanels.length).toBeGreaterThanOrEqual(10);
      for (const p of dataPanels) {
        expect(p.gridPos).toEqual(expect.objectContaining({ w: expect.any(Number), h: expect.any(Number) }));
        expect(p.datasource.uid).toBe(datasourceUid);
        expect(p.targets.length).toBeGreaterThan(0);
        for (const t of p.targets) expect(t.expr.trim().length).toBeGreaterThan(0);
      }
    });

    it('uses only the exported metric names, and shows every one of them', () => {
      const allowed = allowedMetrics();
      const used = new Set(exprs.flatMap((e) => promqlMetricNames(e.replace(/^label_values\((\w+).*$/, '$1'))));
      for (const n of used) expect(`${n} ${allowed.has(n) ? 'exported' : 'unknown'}`).toBe(`${n} exported`);
      const shown = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
      for (const m of TASKSYS_METRICS) expect(`${m} ${shown.has(m) ? 'shown' : 'missing'}`).toBe(`${m} shown`);
    });
  });

  describe('k8s/', () => {
    const dir = join(DOCKER, 'k8s');
    const kustomization = loadYaml(join(dir, 'kustomization.yaml'));
    const docs: Doc[] = (kustomization.resources as string[]).flatMap((f) => loadYamlAll(join(dir, f)));
    const find = (kind: string, name?: string) => docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
    const one = (kind: string, name?: string) => {
      const found = find(kind, name);
      if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
      return found[0];
    };
    const config = one('ConfigMap');
    const secret = one('Secret');
    const secretKeys = Object.keys({ ...(secret.stringData ?? {}), ...(secret.data ?? {}) });
    const deployments = find('Deployment');
    const byComponent = (c: string) => {
      const d = deployments.filter((x) => x.spec.template.metadata.labels['app.kubernetes.io/component'] === c);
      expect(d).toHaveLength(1);
      return d[0];
    };

    it('kustomization lists every manifest in the folder, and each is a Kubernetes object', () => {
      const manifests = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
      expect([...kustomization.resources].sort()).toEqual(manifests.sort());
      for (const d of docs) {
        expect(typeof d.apiVersion).toBe('string');
        expect(typeof d.kind).toBe('string');
        expect(typeof d.metadata?.name).toBe('string');
      }
      expect(one('Namespace').metadata.name).toBe(kustomization.namespace);
    });

    it.each([
      ['api', 'PORT'],
      ['worker', 'WORKER_HEALTH_PORT'],
    ])('the %s Deployment has probes, resources, a non-root user and known configuration', (component, portVar) => {
      const d = byComponent(component);
      const pod = d.spec.template.spec;
      expect(d.spec.selector.matchLabels).toEqual(expect.objectContaining({ 'app.kubernetes.io/component': component }));
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      const uid = /^USER\s+(\d+)/m.exec(read(join(DOCKER, `Dockerfile.${component}`)))?.[1];
      expect(String(pod.securityContext.runAsUser)).toBe(uid);
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0];
      const env = containerEnv(c);
      const ports = Object.fromEntries(c.ports.map((p: Doc) => [p.name, p.containerPort]));
      const portOf = (probe: Doc) => (typeof probe.httpGet.port === 'number' ? probe.httpGet.port : ports[probe.httpGet.port]);
      expect(c.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(c.livenessProbe.httpGet.path).toBe('/health/live');
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) expect(String(portOf(probe))).toBe(env[portVar]);
      expect(c.resources.requests.cpu).toBeTruthy();
      expect(c.resources.requests.memory).toBeTruthy();
      expect(c.resources.limits.memory).toBeTruthy();
      expect(c.lifecycle?.preStop).toBeUndefined();
      const refs = c.envFrom.map((e: Doc) => e.configMapRef?.name ?? e.secretRef?.name);
      expect(refs).toEqual(expect.arrayContaining([config.metadata.name, secret.metadata.name]));
      const known = knownEnvNames();
      const names = [...Object.keys(config.data), ...secretKeys.filter((k) => k !== 'RABBITMQ_MANAGEMENT_URL'), ...c.env.map((e: Doc) => e.name)];
      for (const n of names) expect(`${n} ${known.has(n) ? 'is' : 'is not'} a known variable`).toBe(`${n} is a known variable`);
    });

    it('the api has a Service on its http port', () => {
      const api = byComponent('api');
      const svc = find('Service').find((s) => Object.entries(s.spec.selector).every(([k, v]) => api.spec.template.metadata.labels[k] === v));
      expect(svc).toBeDefined();
      const names = api.spec.template.spec.containers[0].ports.map((p: Doc) => p.name);
      for (const p of svc.spec.ports) expect(names).toContain(p.targetPort);
    });

    it('workers are their own Deployment whose grace period outlasts WORKER_SHUTDOWN_GRACE_MS', () => {
      const worker = byComponent('worker');
      expect(worker.metadata.name).not.toBe(byComponent('api').metadata.name);
      const grace = Number(containerEnv(worker.spec.template.spec.containers[0]).WORKER_SHUTDOWN_GRACE_MS);
      expect(grace).toBeGreaterThan(0);
      expect(worker.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(grace);
    });

    it('a PodDisruptionBudget covers the workers', () => {
      const worker = byComponent('worker');
      const pdb = one('PodDisruptionBudget');
      for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(worker.spec.template.metadata.labels[k]).toBe(v);
      expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
    });

    it('KEDA scales the worker Deployment on the depth of the work queue', () => {
      const worker = byComponent('worker');
      const so = one('ScaledObject');
      expect(so.apiVersion).toMatch(/^keda\.sh\//);
      expect(so.spec.scaleTargetRef.name).toBe(worker.metadata.name);
      expect(so.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(String(so.spec.minReplicaCount)).toBe(config.data.WORKERS_EXPECTED);
      expect(so.spec.maxReplicaCount).toBeGreaterThan(so.spec.minReplicaCount);
      expect(so.spec.triggers).toHaveLength(1);
      const t = so.spec.triggers[0];
      expect(t.type).toBe('rabbitmq');
      expect(t.metadata.mode).toBe('QueueLength');
      expect(t.metadata.queueName).toBe(`${config.data.TASKS_NAMESPACE}.work`);
      expect(Number(t.metadata.value)).toBeGreaterThan(0);
      const auth = one('TriggerAuthentication', t.authenticationRef.name);
      const host = auth.spec.secretTargetRef.find((r: Doc) => r.parameter === 'host');
      expect(host.name).toBe(secret.metadata.name);
      expect(secretKeys).toContain(host.key);
      const url = new URL(secret.stringData[host.key]);
      expect(url.protocol.replace(':', '')).toBe(t.metadata.protocol === 'http' ? 'http' : 'amqp');
    });
  });

  it('keeps its files where the README and compose say', () => {
    for (const f of ['compose.yml', 'Dockerfile.api', 'Dockerfile.worker', 'rabbitmq/rabbitmq.conf', 'prometheus/alerts.yml', 'grafana/dashboards/tasksys.json']) {
      expect(`${f} ${existsSync(join(DOCKER, f)) ? 'exists' : 'missing'}`).toBe(`${f} exists`);
    }
  });
});
