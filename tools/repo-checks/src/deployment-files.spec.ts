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
  'tasksys_queue_oldest_message_age_seconds', // {queue} (issue 14)
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

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

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
    if (doc.errors.length > 0)
      throw new Error(`${relative(REPO_ROOT, path)}: ${doc.errors.map((e: Doc) => e.message).join('; ')}`);
  }
  return docs
    .map((doc) => (typeof doc.toJS === 'function' ? doc.toJS() : doc.toJSON()))
    .filter((d) => d !== null && d !== undefined);
}
const loadYaml = (path: string): Doc => {
  const docs = loadYamlAll(path);
  if (docs.length !== 1)
    throw new Error(`${relative(REPO_ROOT, path)}: expected one YAML document, found ${docs.length}`);
  return docs[0];
};

/** The longest `timeoutMs:` literal among the built-in task types (libs/tasks, read as text). */
function longestBuiltinTaskTimeoutMs(): number {
  const src = read(join(REPO_ROOT, 'libs/tasks/src/lib/task-types/builtin-task-types.ts'));
  const values = [...src.matchAll(/\btimeoutMs:\s*([\d_]+)\s*,/g)].map((m) => Number(m[1].replace(/_/g, '')));
  if (values.length === 0) throw new Error('no `timeoutMs: <number>` found in builtin-task-types.ts');
  return Math.max(...values);
}

/**
 * The top-level keys of every `z.object({ ... })` literal in TypeScript source: a config schema's
 * variables, whatever their values are built from (`WORKER_TASK_TYPES: taskTypeList`). Strings,
 * template literals and comments are skipped while counting brackets.
 */
export function zodObjectKeys(src: string): string[] {
  const keys: string[] = [];
  for (const m of src.matchAll(/\bz\.(?:strictObject|object)\(\s*\{/g)) {
    let depth = 1;
    let top = '';
    let i = (m.index ?? 0) + m[0].length;
    const skipQuoted = (q: string) => {
      for (i++; i < src.length && src[i] !== q; i++) if (src[i] === '\\') i++;
    };
    for (; i < src.length && depth > 0; i++) {
      const ch = src[i];
      if (src.startsWith('//', i) || src.startsWith('/*', i)) {
        const end = src.startsWith('//', i) ? src.indexOf('\n', i) : src.indexOf('*/', i) + 1;
        if (end <= 0) break; // unterminated at the end of the file
        i = end;
      } else if (ch === "'" || ch === '"' || ch === '`') {
        skipQuoted(ch); // a template literal's ${...} holds no backtick in a config schema
        if (depth === 1) top += '""';
      } else if ('{(['.includes(ch)) depth++;
      else if ('})]'.includes(ch)) depth--;
      else if (depth === 1) top += ch;
    }
    for (const k of top.matchAll(/(?:^|,)\s*([A-Z][A-Z0-9_]{2,})\s*:/g)) keys.push(k[1]);
  }
  return keys;
}

/** Environment variables the apps read: their zod config schemas and the README's table. */
function knownEnvNames(): Set<string> {
  const sources = ['apps', 'libs']
    .flatMap((d) => files(join(REPO_ROOT, d)))
    .filter((f) => f.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(f) && !f.includes('node_modules'));
  const names = new Set<string>(['NODE_ENV']);
  for (const f of sources) {
    const src = read(f);
    for (const m of src.matchAll(/^\s*([A-Z][A-Z0-9_]{2,}):\s*(env\.|z\.)/gm)) names.add(m[1]);
    for (const k of zodObjectKeys(src)) names.add(k);
  }
  for (const m of read(join(REPO_ROOT, 'README.md')).matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)) names.add(m[1]);
  return names;
}

/** The metric names registered anywhere in apps/ and libs/ (`name: 'tasksys_...'`). */
function registeredTasksysMetrics(): Set<string> {
  const names = new Set<string>();
  for (const f of ['apps', 'libs'].flatMap((d) => files(join(REPO_ROOT, d)))) {
    if (!f.endsWith('.ts') || /\.(spec|int-spec|e2e-spec)\.ts$/.test(f) || f.includes('node_modules')) continue;
    for (const m of read(f).matchAll(/\bname:\s*'(tasksys_[a-z0-9_]+)'/g)) names.add(m[1]);
  }
  return names;
}

/**
 * The built-in task types and the settings each needs to run (`unavailableReason: (c) => (c.X ? ...`),
 * from libs/tasks' source. A worker serving a type, and the api accepting it, need those settings.
 */
function builtinTaskTypes(): Map<string, string[]> {
  const src = read(join(REPO_ROOT, 'libs/tasks/src/lib/task-types/builtin-task-types.ts'));
  const list = src.slice(src.indexOf('BUILTIN_TASK_TYPES'));
  const blocks = list.split(/\n\s*\{\s*\n\s*type:\s*/).slice(1);
  const types = new Map<string, string[]>();
  for (const b of blocks) {
    const type = /^'([^']+)'/.exec(b)?.[1];
    if (!type) continue;
    const reason = /unavailableReason:[^\n]*/.exec(b)?.[0] ?? '';
    types.set(
      type,
      [...reason.matchAll(/\bc\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]),
    );
  }
  if (types.size === 0) throw new Error('no task types found in builtin-task-types.ts');
  return types;
}

/** The task types the worker app has a handler for (`@HandlesTask('x')` in apps/worker). */
function handledTaskTypes(): Set<string> {
  const found = files(join(REPO_ROOT, 'apps/worker/src'))
    .filter((f) => f.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(f))
    .flatMap((f) => [...read(f).matchAll(/@HandlesTask\('([^']+)'\)/g)].map((m) => m[1]));
  return new Set(found);
}

/**
 * The work queues of a task type, as libs/messaging's topology names them (checked against its
 * source below): `<ns>.work.<type>`, and on quorum queues `<ns>.work.<type>.high` for priorities 5-9.
 */
const workQueuesOf = (ns: string, queueType: string, type: string): string[] =>
  queueType === 'quorum' ? [`${ns}.work.${type}.high`, `${ns}.work.${type}`] : [`${ns}.work.${type}`];

/** `demo.sleep, sql.query` as a list; empty for unset. */
const typeList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/** A setting counts as set when it is non-empty and not an explicit false (env.flag). */
const isSet = (value: string | undefined) => value !== undefined && value !== '' && !/^(0|false|no|off)$/i.test(value);

/** The ```sql block under the README's "### sql.query and the SQL target": the least-privilege role recipe. */
function readmeSqlRecipe(): string {
  const section = read(join(REPO_ROOT, 'README.md')).split('### sql.query and the SQL target')[1];
  const sql = section?.match(/```sql\n([\s\S]*?)```/)?.[1];
  if (!sql) throw new Error('README has no ```sql block under "### sql.query and the SQL target"');
  return sql;
}
/** SQL without comments, whitespace collapsed: for comparing statements. */
const normalizeSql = (sql: string) =>
  sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
const connectionLimitOf = (sql: string): number => {
  const m = /\bCONNECTION LIMIT (\d+)/i.exec(sql);
  if (!m) throw new Error('no CONNECTION LIMIT in the SQL role recipe');
  return Number(m[1]);
};

/** `16 * 1024 * 1024` (the literal default of SQL_MAX_RESULT_BYTES in apps/worker/src/worker.config.ts). */
function defaultSqlMaxResultBytes(): number {
  const src = read(join(REPO_ROOT, 'apps/worker/src/worker.config.ts'));
  const m = /SQL_MAX_RESULT_BYTES:\s*env\.int\(([\d\s*_]+),/.exec(src);
  if (!m) throw new Error('no SQL_MAX_RESULT_BYTES: env.int(<default>, ...) in apps/worker/src/worker.config.ts');
  return m[1].split('*').reduce((p, f) => p * Number(f.trim().replace(/_/g, '')), 1);
}

/** `1Gi`, `512Mi` in bytes. */
function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`bad quantity ${q}`);
  const units: Record<string, number> = {
    '': 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(m[1]) * units[m[2] ?? ''];
}

/** The regular expressions of a PromQL expression's `queue=~"..."` matchers (PromQL string escapes undone). */
function queueMatchers(expr: string): string[] {
  return [...expr.matchAll(/\bqueue\s*=~\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1'));
}
/** Whether a PromQL regex matcher selects `value` (PromQL anchors its regexes). */
const promRegexMatches = (re: string, value: string) => new RegExp(`^(?:${re})$`).test(value);

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

describe('zodObjectKeys and queueMatchers', () => {
  it('finds the top-level keys of a z.object literal, whatever their values', () => {
    const src = `
      const list = z.string();
      export const s = z.object({
        /** a doc comment with KEY: in it */
        A_B: list,
        ...other.shape,
        C_D: z.object({ NESTED: z.string() }).default({ NESTED: 'x' }),
        // E_F: commented out
        G_H: env.int(1, 0, 2), // 'quote
        URL_X: z.string().default('http://a/b,{'),
      });`;
    expect(zodObjectKeys(src)).toEqual(['A_B', 'C_D', 'G_H', 'URL_X', 'NESTED']);
    // WORKER_TASK_TYPES is built by a helper, not by env./z. on its line.
    expect(zodObjectKeys(read(join(REPO_ROOT, 'libs/tasks/src/lib/execution/worker.config.ts')))).toContain(
      'WORKER_TASK_TYPES',
    );
  });

  it('reads queue=~ matchers as PromQL does: escapes undone, anchored', () => {
    const [re] = queueMatchers('max(x{queue=~".+\\\\.work\\\\..+", a="b"})');
    expect(re).toBe('.+\\.work\\..+');
    expect(promRegexMatches(re, 'tasks.work.demo.sleep')).toBe(true);
    expect(promRegexMatches(re, 'tasks.work')).toBe(false);
  });
});

describe('deployment files (docker/)', () => {
  const all = files(DOCKER);
  const known = knownEnvNames();
  const builtin = builtinTaskTypes();
  const handled = handledTaskTypes();
  const recipe = readmeSqlRecipe();
  const expectKnown = (where: string, names: string[]) => {
    for (const n of names)
      expect(`${where}: ${n} ${known.has(n) ? 'is' : 'is not'} a known variable`).toBe(
        `${where}: ${n} is a known variable`,
      );
  };
  /** The built-in types a process with these settings can run (the api accepts only those). */
  const runnableWith = (env: Record<string, string | undefined>) =>
    [...builtin].filter(([, needs]) => needs.every((n) => isSet(env[n]))).map(([t]) => t);

  // Queue names of the compose and Kubernetes namespace (both `tasks`; checked below): every
  // built-in type's work queues, and the queues that are not work queues.
  const ns = 'tasks';
  const workQueues = [...builtin.keys()].flatMap((t) => workQueuesOf(ns, 'quorum', t));
  const otherQueues = [`${ns}.work`, `${ns}.unrouted`, `${ns}.dead`, `${ns}.retry.1s`, `${ns}.retry.10m`];
  /** A `queue=~` regex meant for the work queues selects each type's (and .high) and nothing else. */
  const expectWorkQueueMatcher = (re: string) => {
    for (const q of workQueues)
      expect(`${re} ${promRegexMatches(re, q) ? 'matches' : 'misses'} ${q}`).toBe(`${re} matches ${q}`);
    for (const q of otherQueues)
      expect(`${re} ${promRegexMatches(re, q) ? 'matches' : 'misses'} ${q}`).toBe(`${re} misses ${q}`);
  };
  const expectKnownQueueMatcher = (where: string, re: string) => {
    if (re.startsWith('$')) return; // the dashboard's queue variable
    if (re.includes('work')) return expectWorkQueueMatcher(re);
    expect(
      `${where}: ${re} ${promRegexMatches(re, `${ns}.unrouted`) && !workQueues.some((q) => promRegexMatches(re, q)) ? 'selects the unrouted queue' : 'selects neither'}`,
    ).toBe(`${where}: ${re} selects the unrouted queue`);
  };

  it('every YAML and JSON file parses', () => {
    const data = all.filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(data.length).toBeGreaterThanOrEqual(12);
    for (const f of data) {
      if (f.endsWith('.json')) expect(() => JSON.parse(read(f))).not.toThrow();
      else expect(loadYamlAll(f).length).toBeGreaterThan(0);
    }
  });

  it('names work queues as the topology does, and no file names the single work queue of before issue 14', () => {
    // The per-type names this file expects (workQueuesOf) are the topology's.
    const topology = read(join(REPO_ROOT, 'libs/messaging/src/lib/topology/topology.ts'));
    expect(topology).toContain('`${this.namespace}.work.${type}`');
    expect(topology).toContain('`${this.namespace}.work.${type}.high`');
    expect(builtin.size).toBeGreaterThanOrEqual(3);
    for (const t of builtin.keys())
      expect(`${t} ${handled.has(t) ? 'handled' : 'has no handler'}`).toBe(`${t} handled`);
    expect(builtin.get('sql.query')).toEqual(['SQL_TARGET_URL']);
    // `tasks.work`, `<TASKS_NAMESPACE>.work`, the old alert's `.*work`: gone everywhere (backslashes of
    // escaped regexes dropped first, so `tasks\\.work\\..+` reads as the per-type `tasks.work..+`).
    for (const f of all) {
      const text = read(f).replace(/\\/g, '');
      const bare = [...text.matchAll(/[\w<>}$*]*\.work(?![\w.-])|\.\*work\b/g)].map((m) => m[0]);
      expect(`${relative(DOCKER, f)}: ${bare.join(', ') || 'none'}`).toBe(`${relative(DOCKER, f)}: none`);
    }
  });

  describe('compose.yml', () => {
    const compose = loadYaml(join(DOCKER, 'compose.yml'));
    const services = compose.services;
    /** Every service running the worker image: one per worker group. */
    const workers: [string, Doc][] = Object.entries<Doc>(services).filter(
      ([, s]) => s.build?.dockerfile === 'docker/Dockerfile.worker',
    );
    const replicasOf = (s: Doc): number => s.deploy?.replicas ?? 1;

    it('has postgres, rabbitmq, api, two worker groups (general and sql), prometheus and grafana', () => {
      expect(Object.keys(services)).toEqual(
        expect.arrayContaining(['postgres', 'rabbitmq', 'api', 'worker', 'worker-sql', 'prometheus', 'grafana']),
      );
      expect(workers.map(([n]) => n).sort()).toEqual(['worker', 'worker-sql']);
      for (const [, s] of workers) expect(s.image).toBe(services.worker.image);
      for (const name of ['api', ...workers.map(([n]) => n)]) expect(envOf(services[name]).TASKS_NAMESPACE).toBe(ns);
      expect(typeList(envOf(services.worker).WORKER_TASK_TYPES)).toEqual(['demo.sleep']);
      expect(replicasOf(services.worker)).toBe(2);
      expect(typeList(envOf(services['worker-sql']).WORKER_TASK_TYPES)).toEqual(['sql.query']);
      expect(replicasOf(services['worker-sql'])).toBe(1);
    });

    it('gives each worker group its own task types, disjoint, and WORKERS_EXPECTED the total of their replicas', () => {
      const seen = new Map<string, string>();
      for (const [name, s] of workers) {
        const types = typeList(envOf(s).WORKER_TASK_TYPES);
        expect(`${name}: ${types.length > 0 ? 'names its types' : 'WORKER_TASK_TYPES unset'}`).toBe(
          `${name}: names its types`,
        );
        expect(new Set(types).size).toBe(types.length);
        for (const t of types) {
          expect(`${t} served by ${seen.get(t) ?? name}`).toBe(`${t} served by ${name}`);
          seen.set(t, name);
        }
        expect(Number.isInteger(replicasOf(s)) && replicasOf(s) >= 1).toBe(true);
      }
      const total = workers.reduce((sum, [, s]) => sum + replicasOf(s), 0);
      for (const name of ['api', ...workers.map(([n]) => n)])
        expect(`${name}: WORKERS_EXPECTED=${envOf(services[name]).WORKERS_EXPECTED}`).toBe(
          `${name}: WORKERS_EXPECTED=${total}`,
        );
    });

    it('every group can run its types, and every type the api accepts has a group', () => {
      const served = new Set<string>();
      for (const [name, s] of workers) {
        const env = envOf(s);
        const runnable = runnableWith(env);
        for (const t of typeList(env.WORKER_TASK_TYPES)) {
          expect(`${name}: ${t} ${handled.has(t) ? 'handled' : 'has no handler'}`).toBe(`${name}: ${t} handled`);
          expect(`${name}: ${t} ${runnable.includes(t) ? 'runnable' : `needs ${builtin.get(t)?.join(', ')}`}`).toBe(
            `${name}: ${t} runnable`,
          );
          served.add(t);
        }
      }
      // A type the api accepts and no group serves would wait in tasks.unrouted for ever; a type a
      // group serves and the api refuses could never be submitted.
      const accepted = runnableWith(envOf(services.api));
      expect(accepted.sort()).toEqual([...served].sort());
    });

    it("worker-sql reads a sample database as the README's least-privilege role, created by an init script", () => {
      const pg = services.postgres;
      const mount = (pg.volumes as string[])
        .map((v) => v.split(':'))
        .find(([, target]) => target === '/docker-entrypoint-initdb.d');
      expect(mount).toBeDefined();
      expect(mount?.[2]).toBe('ro');
      const dir = join(DOCKER, mount?.[0] ?? '');
      const scripts = readdirSync(dir).filter((f) => /\.(sql|sh)$/.test(f));
      expect(scripts).toEqual(['10-sql-target.sql']);
      const init = read(join(dir, scripts[0]));

      const sqlWorkers = workers.filter(([, s]) => typeList(envOf(s).WORKER_TASK_TYPES).includes('sql.query'));
      expect(sqlWorkers.map(([n]) => n)).toEqual(['worker-sql']);
      const env = envOf(services['worker-sql']);
      const url = new URL(env.SQL_TARGET_URL);
      const role = decodeURIComponent(url.username);
      const database = url.pathname.slice(1);
      expect(url.hostname).toBe('postgres');
      expect(database).not.toBe(envOf(pg).POSTGRES_DB); // never the product's own database
      expect(role).not.toBe('postgres');
      expect(envOf(services.api).SQL_TARGET_URL).toBe(env.SQL_TARGET_URL);

      // The script creates that database and role, then applies the README's recipe unchanged.
      expect(init).toMatch(new RegExp(`^CREATE DATABASE ${database}\\b`, 'm'));
      expect(init).toMatch(new RegExp(`^\\\\connect ${database}$`, 'm'));
      expect(normalizeSql(init)).toContain(normalizeSql(recipe));
      expect(recipe).toMatch(new RegExp(`^CREATE ROLE ${role} LOGIN\\b[^;]*\\bNOSUPERUSER\\b`, 'm'));
      expect(recipe).toMatch(new RegExp(`^ALTER ROLE ${role} SET default_transaction_read_only = on;`, 'm'));
      expect(recipe).toMatch(new RegExp(`^GRANT CONNECT ON DATABASE ${database} TO ${role};`, 'm'));
      expect(init).toMatch(
        new RegExp(`^REVOKE CONNECT\\b[^;]* ON DATABASE ${envOf(pg).POSTGRES_DB} FROM PUBLIC;`, 'm'),
      );
      expect(init).not.toMatch(/\bGRANT\b[^;]*\bTO tasksys_sql_reader\b[^;]*\bWITH (GRANT|ADMIN) OPTION/i);

      // Each running sql.query holds a connection of its own.
      const running = sqlWorkers.reduce((sum, [, s]) => sum + replicasOf(s) * Number(envOf(s).WORKER_CONCURRENCY), 0);
      expect(running).toBeGreaterThan(0);
      expect(running).toBeLessThanOrEqual(connectionLimitOf(recipe));
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
      expect(
        mq.volumes.some((v: string) =>
          /^\.\/rabbitmq\/rabbitmq\.conf:\/etc\/rabbitmq\/(conf\.d\/[\w-]+\.conf|rabbitmq\.conf)(:ro)?$/.test(v),
        ),
      ).toBe(true);
    });

    it('publishes every port on 127.0.0.1 only', () => {
      for (const [name, s] of Object.entries<Doc>(services)) {
        for (const p of s.ports ?? [])
          expect(`${name} ${p}`).toMatch(new RegExp(`^${name} 127\\.0\\.0\\.1:\\d+:\\d+$`));
      }
    });

    it('mounts only files that exist', () => {
      for (const s of Object.values<Doc>(services)) {
        for (const v of s.volumes ?? []) {
          const source = String(v).split(':')[0];
          if (source.startsWith('.'))
            expect(`${source} ${existsSync(join(DOCKER, source)) ? 'exists' : 'missing'}`).toBe(`${source} exists`);
        }
      }
    });

    it('builds the apps from the repository root with their Dockerfiles and starts them after healthy services', () => {
      for (const [app, port] of [['api', 'PORT'], ...workers.map(([n]) => [n, 'WORKER_HEALTH_PORT'])] as const) {
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
        expectKnown(app, Object.keys(env));
      }
    });

    it('lets every worker drain: stop_grace_period is longer than WORKER_SHUTDOWN_GRACE_MS', () => {
      for (const [, s] of workers) {
        const grace = Number(envOf(s).WORKER_SHUTDOWN_GRACE_MS);
        expect(grace).toBeGreaterThan(0);
        expect(durationMs(s.stop_grace_period)).toBeGreaterThan(grace);
      }
    });

    it('wires Prometheus (every replica of every worker group) and Grafana to the files in docker/', () => {
      const prom = loadYaml(join(DOCKER, 'prometheus/prometheus.yml'));
      const mounts = (s: Doc) =>
        Object.fromEntries((s.volumes as string[]).map((v) => v.split(':').slice(0, 2)).map(([a, b]) => [a, b]));
      const pm = mounts(services.prometheus);
      expect(prom.rule_files).toContain(pm['./prometheus/alerts.yml']);
      expect(pm['./prometheus/prometheus.yml']).toBe('/etc/prometheus/prometheus.yml');

      const jobs: Doc[] = prom.scrape_configs;
      const staticTargets = jobs.flatMap((j) => (j.static_configs ?? []).flatMap((c: Doc) => c.targets));
      // Every replica is scraped on its own (DNS lists each), not one of them through the service's address.
      const dnsTargets = jobs.flatMap((j) =>
        (j.dns_sd_configs ?? []).flatMap((c: Doc) => c.names.map((n: string) => `${n}:${c.port}`)),
      );
      expect(staticTargets).toContain(`api:${envOf(services.api).PORT}`);
      for (const [name, s] of workers) expect(dnsTargets).toContain(`${name}:${envOf(s).WORKER_HEALTH_PORT}`);
      expect(services.prometheus.depends_on).toEqual(expect.arrayContaining(['api', ...workers.map(([n]) => n)]));

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
      expect(last).toMatch(
        new RegExp(
          `^COPY --from=\\S+ \\S*dist/apps/${app}/package\\.json \\S*dist/apps/${app}/package-lock\\.json`,
          'm',
        ),
      );
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
      const ignore = read(join(DOCKER, `Dockerfile.${app}.dockerignore`))
        .split('\n')
        .map((l) => l.trim());
      expect(ignore).toContain('**/node_modules');
      const sources = lines
        .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
        .flatMap((l) =>
          l
            .replace(/^COPY\s+(--\S+\s+)*/, '')
            .split(/\s+/)
            .slice(0, -1),
        );
      expect(sources.length).toBeGreaterThan(0);
      for (const s of sources) {
        expect(`${s}: ${ignore.includes(`!${s}`) || ignore.includes(`!${s}/**`) ? 'included' : 'ignored'}`).toBe(
          `${s}: included`,
        );
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
        for (const n of names)
          expect(`${r.alert}: ${n} ${allowed.has(n) ? 'exported' : 'unknown'}`).toBe(`${r.alert}: ${n} exported`);
      }
    });

    it('covers workers below expected, dead letters, outbox lag, a work queue without consumers and the failure ratio', () => {
      const expr = (pred: (names: string[], e: string) => boolean) =>
        rules.some((r) => pred(promqlMetricNames(r.expr), r.expr));
      expect(expr((n) => n.includes('tasksys_workers_alive') && n.includes('tasksys_workers_expected'))).toBe(true);
      expect(expr((n, e) => n.includes('tasksys_dead_letters_total') && /increase\(/.test(e))).toBe(true);
      expect(expr((n, e) => n.includes('tasksys_outbox_oldest_age_seconds') && /> *60\b/.test(e))).toBe(true);
      const workRule = rules.find((r) => {
        const n = promqlMetricNames(r.expr);
        return n.includes('tasksys_queue_messages') && n.includes('tasksys_queue_consumers');
      });
      expect(workRule?.for).toBe('5m');
      // Its matchers select every per-type work queue (checked below), so each group's own queues count.
      const matchers = queueMatchers(workRule?.expr ?? '');
      expect(matchers).toHaveLength(2);
      for (const re of matchers) expectWorkQueueMatcher(re);
      expect(
        expr((n, e) => n.includes('tasksys_task_transitions_total') && /to="failed"/.test(e) && e.includes('/')),
      ).toBe(true);
      // A type no group serves waits in <ns>.unrouted.
      expect(
        expr(
          (n, e) =>
            n.includes('tasksys_queue_messages') &&
            queueMatchers(e).some(
              (re) => promRegexMatches(re, `${ns}.unrouted`) && !promRegexMatches(re, `${ns}.work.demo.sleep`),
            ),
        ),
      ).toBe(true);
    });

    it('every queue matcher is the Grafana variable, the work queues or the unrouted queue', () => {
      for (const r of rules) for (const re of queueMatchers(r.expr)) expectKnownQueueMatcher(`${r.alert}`, re);
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

    it('every queue matcher is the Grafana variable, the work queues or the unrouted queue', () => {
      const matchers = exprs.flatMap((e) => queueMatchers(e));
      expect(matchers.filter((re) => re.includes('work')).length).toBeGreaterThanOrEqual(2); // consumers, oldest message
      for (const re of matchers) expectKnownQueueMatcher('dashboard', re);
    });

    it('uses only the exported metric names, and shows every one of them', () => {
      const allowed = allowedMetrics();
      const used = new Set(exprs.flatMap((e) => promqlMetricNames(e.replace(/^label_values\((\w+).*$/, '$1'))));
      for (const n of used) expect(`${n} ${allowed.has(n) ? 'exported' : 'unknown'}`).toBe(`${n} exported`);
      const shown = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
      for (const m of TASKSYS_METRICS) expect(`${m} ${shown.has(m) ? 'shown' : 'missing'}`).toBe(`${m} shown`);
    });

    it('lists only metric names the apps register (a renamed metric fails here, not on a blank panel)', () => {
      const registered = registeredTasksysMetrics();
      for (const m of TASKSYS_METRICS)
        expect(`${m} ${registered.has(m) ? 'registered' : 'not registered'}`).toBe(`${m} registered`);
    });
  });

  describe('k8s/', () => {
    const dir = join(DOCKER, 'k8s');
    const kustomization = loadYaml(join(dir, 'kustomization.yaml'));
    const docs: Doc[] = (kustomization.resources as string[]).flatMap((f) => loadYamlAll(join(dir, f)));
    const find = (kind: string, name?: string) =>
      docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
    const one = (kind: string, name?: string) => {
      const found = find(kind, name);
      if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
      return found[0];
    };
    const config = one('ConfigMap');
    const secrets = find('Secret');
    const secretData = (s: Doc): Record<string, string> => ({ ...(s.stringData ?? {}), ...(s.data ?? {}) });
    const deployments = find('Deployment');
    const imageOf = (d: Doc) => d.spec.template.spec.containers[0].image;
    const api = (() => {
      const d = deployments.filter((x) => imageOf(x) === 'tasksys-api');
      if (d.length !== 1) throw new Error(`expected one api Deployment, found ${d.length}`);
      return d[0];
    })();
    /** Every Deployment of the worker image: one per worker group. */
    const workers = deployments.filter((d) => imageOf(d) === 'tasksys-worker');
    const podLabels = (d: Doc): Record<string, string> => d.spec.template.metadata.labels;
    const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    /** A container's environment as the pod sees it: envFrom (ConfigMap, Secrets), then env values and references. */
    const podEnv = (d: Doc): Doc => {
      const c = d.spec.template.spec.containers[0];
      const env: Record<string, string> = {};
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef) Object.assign(env, one('ConfigMap', e.configMapRef.name).data);
        if (e.secretRef) Object.assign(env, secretData(one('Secret', e.secretRef.name)));
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        if ('value' in e) env[e.name] = String(e.value);
        else if (e.valueFrom?.secretKeyRef) env[e.name] = secretData(one('Secret', ref.name))[ref.key];
        else if (e.valueFrom?.configMapKeyRef) env[e.name] = one('ConfigMap', ref.name).data[ref.key];
        else env[e.name] = `<${e.name} from the pod>`;
      }
      return env;
    };
    const scaledObjectOf = (d: Doc) => {
      const found = find('ScaledObject').filter(
        (so) =>
          so.spec.scaleTargetRef.name === d.metadata.name &&
          (so.spec.scaleTargetRef.kind ?? 'Deployment') === 'Deployment',
      );
      if (found.length !== 1)
        throw new Error(`expected one ScaledObject for ${d.metadata.name}, found ${found.length}`);
      return found[0];
    };

    it('kustomization lists every manifest in the folder, and each is a Kubernetes object', () => {
      const manifests = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
      expect([...kustomization.resources].sort()).toEqual(manifests.sort());
      for (const d of docs) {
        expect(typeof d.apiVersion).toBe('string');
        expect(typeof d.kind).toBe('string');
        expect(typeof d.metadata?.name).toBe('string');
      }
      expect(new Set(docs.map((d) => `${d.kind}/${d.metadata.name}`)).size).toBe(docs.length);
      expect(one('Namespace').metadata.name).toBe(kustomization.namespace);
      expect(config.data.TASKS_NAMESPACE).toBe(ns);
    });

    it('every Deployment has probes, resources, a non-root user, references that resolve and known configuration', () => {
      expect(deployments).toHaveLength(1 + workers.length);
      for (const d of deployments) {
        const component = imageOf(d) === 'tasksys-api' ? 'api' : 'worker';
        const portVar = component === 'api' ? 'PORT' : 'WORKER_HEALTH_PORT';
        const pod = d.spec.template.spec;
        for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(podLabels(d)[k]).toBe(v);
        // No Deployment's selector takes another's pods (their ReplicaSets would fight over them).
        for (const other of deployments.filter((o) => o !== d))
          expect(
            `${d.metadata.name} selects ${other.metadata.name}'s pods: ${selects(d.spec.selector.matchLabels, podLabels(other))}`,
          ).toBe(`${d.metadata.name} selects ${other.metadata.name}'s pods: false`);
        expect(pod.securityContext.runAsNonRoot).toBe(true);
        const uid = /^USER\s+(\d+)/m.exec(read(join(DOCKER, `Dockerfile.${component}`)))?.[1];
        expect(String(pod.securityContext.runAsUser)).toBe(uid);
        expect(pod.containers).toHaveLength(1);
        const c = pod.containers[0];
        const env = containerEnv(c);
        const ports = Object.fromEntries(c.ports.map((p: Doc) => [p.name, p.containerPort]));
        const portOf = (probe: Doc) =>
          typeof probe.httpGet.port === 'number' ? probe.httpGet.port : ports[probe.httpGet.port];
        expect(c.readinessProbe.httpGet.path).toBe('/health/ready');
        expect(c.livenessProbe.httpGet.path).toBe('/health/live');
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean))
          expect(String(portOf(probe))).toBe(env[portVar]);
        expect(c.resources.requests.cpu).toBeTruthy();
        expect(c.resources.requests.memory).toBeTruthy();
        expect(c.resources.limits.memory).toBeTruthy();
        expect(c.lifecycle?.preStop).toBeUndefined();
        const refs = c.envFrom.map((e: Doc) => e.configMapRef?.name ?? e.secretRef?.name);
        expect(refs).toEqual(expect.arrayContaining([config.metadata.name, 'tasksys-secrets']));
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref)
            expect(
              `${e.name}: ${ref.name}/${ref.key} ${secretData(find('Secret', ref.name)[0] ?? {})[ref.key] !== undefined ? 'exists' : 'missing'}`,
            ).toBe(`${e.name}: ${ref.name}/${ref.key} exists`);
        }
        const fromSecrets = c.envFrom
          .filter((e: Doc) => e.secretRef)
          .flatMap((e: Doc) => Object.keys(secretData(one('Secret', e.secretRef.name))));
        const names = [
          ...Object.keys(config.data),
          ...fromSecrets.filter((k: string) => k !== 'RABBITMQ_MANAGEMENT_URL'),
          ...c.env.map((e: Doc) => e.name),
        ];
        expectKnown(d.metadata.name, names);
      }
    });

    it("every Secret is used, and the target database's only by the pods that need it", () => {
      const referenced = (name: string) =>
        deployments.filter((d) => {
          const c = d.spec.template.spec.containers[0];
          return (
            c.envFrom.some((e: Doc) => e.secretRef?.name === name) ||
            (c.env ?? []).some((e: Doc) => e.valueFrom?.secretKeyRef?.name === name)
          );
        });
      for (const s of secrets) {
        const users = [
          ...referenced(s.metadata.name),
          ...find('TriggerAuthentication').filter((a) =>
            a.spec.secretTargetRef.some((r: Doc) => r.name === s.metadata.name),
          ),
        ];
        expect(`${s.metadata.name}: ${users.length > 0 ? 'used' : 'unused'}`).toBe(`${s.metadata.name}: used`);
        // SQL_TARGET_URL in a Secret every pod loads whole would hand the general workers its credentials.
        if ('SQL_TARGET_URL' in secretData(s))
          expect(
            deployments.filter((d) =>
              d.spec.template.spec.containers[0].envFrom.some((e: Doc) => e.secretRef?.name === s.metadata.name),
            ),
          ).toEqual([]);
      }
    });

    it('the api has a Service on its http port', () => {
      const svc = find('Service').find((s) => selects(s.spec.selector, podLabels(api)));
      expect(svc).toBeDefined();
      const names = api.spec.template.spec.containers[0].ports.map((p: Doc) => p.name);
      for (const p of svc.spec.ports) expect(names).toContain(p.targetPort);
    });

    it('two worker groups (general and sql), each its own Deployment with its own disjoint task types', () => {
      expect(workers.map((d) => d.metadata.name).sort()).toEqual(['tasksys-worker', 'tasksys-worker-sql']);
      const typesOf = (name: string) =>
        typeList(podEnv(workers.find((d) => d.metadata.name === name)).WORKER_TASK_TYPES);
      expect(typesOf('tasksys-worker')).toEqual(['demo.sleep']);
      expect(typesOf('tasksys-worker-sql')).toEqual(['sql.query']);
      const seen = new Map<string, string>();
      const served = new Set<string>();
      for (const d of workers) {
        const env = podEnv(d);
        const types = typeList(env.WORKER_TASK_TYPES);
        expect(`${d.metadata.name}: ${types.length > 0 ? 'names its types' : 'WORKER_TASK_TYPES unset'}`).toBe(
          `${d.metadata.name}: names its types`,
        );
        const runnable = runnableWith(env);
        for (const t of types) {
          expect(`${t} served by ${seen.get(t) ?? d.metadata.name}`).toBe(`${t} served by ${d.metadata.name}`);
          seen.set(t, d.metadata.name);
          expect(`${d.metadata.name}: ${t} ${handled.has(t) ? 'handled' : 'has no handler'}`).toBe(
            `${d.metadata.name}: ${t} handled`,
          );
          expect(
            `${d.metadata.name}: ${t} ${runnable.includes(t) ? 'runnable' : `needs ${builtin.get(t)?.join(', ')}`}`,
          ).toBe(`${d.metadata.name}: ${t} runnable`);
          served.add(t);
        }
        // The target database's credentials reach only the group that runs sql.query.
        if (!types.includes('sql.query'))
          expect(`${d.metadata.name}: SQL_TARGET_URL ${env.SQL_TARGET_URL === undefined ? 'absent' : 'set'}`).toBe(
            `${d.metadata.name}: SQL_TARGET_URL absent`,
          );
      }
      // A type the api accepts and no group serves would wait in tasks.unrouted for ever.
      expect(runnableWith(podEnv(api)).sort()).toEqual([...served].sort());
    });

    it("every worker Deployment's grace period outlasts WORKER_SHUTDOWN_GRACE_MS", () => {
      for (const d of workers) {
        const grace = Number(podEnv(d).WORKER_SHUTDOWN_GRACE_MS);
        expect(grace).toBeGreaterThan(0);
        expect(d.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(grace);
        expect(d.spec.replicas).toBeUndefined(); // the ScaledObject owns the count
      }
    });

    it('a PodDisruptionBudget covers each worker Deployment, and only its pods', () => {
      const pdbs = find('PodDisruptionBudget');
      expect(pdbs).toHaveLength(workers.length);
      for (const d of workers) {
        const mine = pdbs.filter((p) => selects(p.spec.selector.matchLabels, podLabels(d)));
        expect(`${d.metadata.name}: ${mine.length} PDB(s)`).toBe(`${d.metadata.name}: 1 PDB(s)`);
        const pdb = mine[0];
        for (const other of deployments.filter((o) => o !== d))
          expect(selects(pdb.spec.selector.matchLabels, podLabels(other))).toBe(false);
        expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
        // A minAvailable at the group's floor would block every node drain.
        if (pdb.spec.minAvailable !== undefined)
          expect(Number(pdb.spec.minAvailable)).toBeLessThan(scaledObjectOf(d).spec.minReplicaCount);
      }
    });

    it('KEDA scales each worker Deployment on exactly its own queues, one trigger per queue', () => {
      expect(find('ScaledObject')).toHaveLength(workers.length);
      for (const d of workers) {
        const env = podEnv(d);
        const so = scaledObjectOf(d);
        expect(so.apiVersion).toMatch(/^keda\.sh\//);
        expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(1); // its workers alone sweep and redrive its types
        expect(so.spec.maxReplicaCount).toBeGreaterThan(so.spec.minReplicaCount);
        const triggers: Doc[] = so.spec.triggers;
        const expected = typeList(env.WORKER_TASK_TYPES).flatMap((t) =>
          workQueuesOf(config.data.TASKS_NAMESPACE, config.data.RABBITMQ_QUEUE_TYPE, t),
        );
        expect(triggers.map((t) => t.metadata.queueName).sort()).toEqual(expected.sort());
        for (const t of triggers) {
          expect(t.type).toBe('rabbitmq');
          expect(t.metadata.mode).toBe('QueueLength');
          expect(t.metadata.useRegex).toBeUndefined();
          expect(Number(t.metadata.value)).toBeGreaterThan(0);
          const auth = one('TriggerAuthentication', t.authenticationRef.name);
          const host = auth.spec.secretTargetRef.find((r: Doc) => r.parameter === 'host');
          const url = new URL(secretData(one('Secret', host.name))[host.key]);
          expect(url.protocol.replace(':', '')).toBe(t.metadata.protocol === 'http' ? 'http' : 'amqp');
        }
        // The worker's slots are shared by its types: scale on the sum of its queues.
        const modifiers = so.spec.advanced?.scalingModifiers;
        if (triggers.length > 1) {
          expect(triggers.every((t) => typeof t.name === 'string')).toBe(true);
          expect(
            modifiers.formula
              .split('+')
              .map((n: string) => n.trim())
              .sort(),
          ).toEqual(triggers.map((t) => t.name).sort());
          expect(modifiers.metricType).toBe('AverageValue');
        }
        // Per worker: at least its WORKER_CONCURRENCY (a full worker), so running tasks alone do not add workers.
        const target = Number(modifiers?.target ?? triggers[0].metadata.value);
        expect(target).toBeGreaterThanOrEqual(Number(env.WORKER_CONCURRENCY));
      }
    });

    it('the floors of the ScaledObjects add up to WORKERS_EXPECTED', () => {
      const floors = workers.reduce((sum, d) => sum + scaledObjectOf(d).spec.minReplicaCount, 0);
      expect(String(floors)).toBe(config.data.WORKERS_EXPECTED);
      for (const d of [api, ...workers]) expect(podEnv(d).WORKERS_EXPECTED).toBe(config.data.WORKERS_EXPECTED);
    });

    it("the sql group stays within the target role's connections and its memory limit", () => {
      const sql = workers.filter((d) => typeList(podEnv(d).WORKER_TASK_TYPES).includes('sql.query'));
      expect(sql).toHaveLength(1);
      for (const d of sql) {
        const env = podEnv(d);
        const url = new URL(env.SQL_TARGET_URL);
        expect(url.protocol).toMatch(/^postgres(ql)?:$/);
        expect(url.pathname.slice(1)).not.toBe(new URL(podEnv(d).DATABASE_URL).pathname.slice(1));
        expect(decodeURIComponent(url.username)).toBe(/^CREATE ROLE (\w+)/m.exec(recipe)?.[1]);
        const concurrency = Number(env.WORKER_CONCURRENCY);
        expect(scaledObjectOf(d).spec.maxReplicaCount * concurrency).toBeLessThanOrEqual(connectionLimitOf(recipe));
        const resultBytes = env.SQL_MAX_RESULT_BYTES ? Number(env.SQL_MAX_RESULT_BYTES) : defaultSqlMaxResultBytes();
        const limit = quantityBytes(d.spec.template.spec.containers[0].resources.limits.memory);
        expect(concurrency * resultBytes).toBeLessThanOrEqual(limit / 2);
      }
    });
  });

  it('keeps its files where the README and compose say', () => {
    for (const f of [
      'compose.yml',
      'Dockerfile.api',
      'Dockerfile.worker',
      'rabbitmq/rabbitmq.conf',
      'prometheus/alerts.yml',
      'grafana/dashboards/tasksys.json',
    ]) {
      expect(`${f} ${existsSync(join(DOCKER, f)) ? 'exists' : 'missing'}`).toBe(`${f} exists`);
    }
  });
});
