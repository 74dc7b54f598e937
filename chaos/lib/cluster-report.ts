/**
 * The cluster profile's part of docs/RELIABILITY.md: a section between two markers, replaced by each
 * cluster run and kept as it is when the single-node report is written again (report.ts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Profile } from './profile';
import type { ScenarioResult } from './scenario';

const BEGIN = '<!-- cluster-profile:begin (written by `npm run chaos -- --profile cluster`) -->';
const END = '<!-- cluster-profile:end -->';

const s = (ms: number | null) => (ms === null ? 'not settled' : `${(ms / 1000).toFixed(1)} s`);

export function renderClusterSection(
  results: ScenarioResult[],
  profile: Profile,
  command: string,
  totalMs: number,
): string {
  const ok = results.every((r) => r.ok);
  const lines = [
    BEGIN,
    '## On a RabbitMQ cluster: quorum queues, nodes killed',
    '',
    'A private 3-node RabbitMQ cluster on this machine (`libs/testing/src/lib/rabbitmq-cluster.ts`: own node names, ports,',
    'cookie and data dirs; the shared node untouched), the apps given every node (`RABBITMQ_URL` as a comma list) and',
    '`RABBITMQ_QUEUE_TYPE=quorum` with `RABBITMQ_QUORUM_REPLICAS=3`. Nodes are killed with `kill -9` (SIGKILL of the beam',
    'process: no goodbye to peers or clients) or stopped with `rabbitmqctl stop`, while tasks run. Same invariants and columns',
    'as above; *time to recover* runs from the end of the fault (the node started again) to every task terminal.',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} cores, Node ${process.version}; each node limited to one Erlang scheduler (\`+S 1:1\`)`,
    `- command: \`${command}\` (${profile.workers} workers, ${profile.cluster.tasks} tasks a scenario, ${(totalMs / 1000).toFixed(0)} s in all)`,
    `- result: **${ok ? 'every invariant held' : 'INVARIANTS BROKEN'}**`,
    '',
    'Run it with `npm run build && npm run chaos -- --profile cluster` (writes this section only, leaves the rest of the',
    'file); `npm test` runs `cluster-leader-kill` as `chaos/cluster.processes.e2e-spec.ts`. *Tasks finished while the fault',
    'lasted* counts the tasks that reached their terminal state between the first kill or stop and the node being back: the',
    'cluster kept working, it did not merely recover afterwards.',
    '',
    '| # | scenario | submitted | terminal | lost | committed twice | executions repeated | time to recover | outcome | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...results.map((r, i) => {
      const t = r.tasks;
      const byStatus = Object.entries(t.byStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return `| C${i + 1} | ${r.id}: ${r.title} | ${t.submitted} | ${t.terminal} | ${t.lost} | ${t.committedTwice} | ${t.repeatedExecutions} | ${s(r.recoverMs)} | ${byStatus} | ${r.ok ? 'pass' : '**FAIL**'} |`;
    }),
    '',
  ];
  results.forEach((r, i) => {
    lines.push(`### C${i + 1}. ${r.id} — ${r.ok ? 'pass' : 'FAIL'} (${(r.durationMs / 1000).toFixed(0)} s)`, '');
    lines.push(r.title + '.', '');
    for (const n of r.notes) lines.push(`- ${n}`);
    for (const c of r.extra)
      lines.push(`- ${c.ok ? 'ok' : '**FAILED**'}: ${c.name} — ${c.detail.replace(/\|/g, '\\|')}`);
    for (const v of r.tasks.violations) lines.push(`- **violation**: ${v}`);
    lines.push('');
  });
  lines.push(END, '');
  return lines.join('\n');
}

/** The cluster section of the report at `path`, if a cluster run wrote one ('' otherwise). */
export function keptClusterSection(path: string): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END, begin);
  return begin >= 0 && end > begin ? `\n${text.slice(begin, end + END.length)}\n` : '';
}

/** Writes (or replaces) the cluster section of the report at `path`, leaving the rest as it is. */
export function writeClusterReport(
  path: string,
  results: ScenarioResult[],
  profile: Profile,
  command: string,
  totalMs: number,
): void {
  const section = renderClusterSection(results, profile, command, totalMs);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Reliability: what the system survives\n';
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END, begin);
  const next =
    begin >= 0 && end > begin
      ? text.slice(0, begin) + section.trimEnd() + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(path, next.endsWith('\n') ? next : `${next}\n`);
}
