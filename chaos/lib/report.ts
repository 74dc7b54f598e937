/** Writes the results as docs/RELIABILITY.md (or another path). */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { keptClusterSection } from './cluster-report';
import type { Profile } from './profile';
import type { ScenarioResult } from './scenario';

const s = (ms: number | null) => (ms === null ? 'not settled' : `${(ms / 1000).toFixed(1)} s`);

export function renderReport(results: ScenarioResult[], profile: Profile, command: string, totalMs: number): string {
  const ok = results.every((r) => r.ok);
  const lines = [
    '# Reliability: what the system survives',
    '',
    'Written by the fault-injection harness (`chaos/`); do not edit by hand. Each row is a scenario run',
    'against the built api and worker bundles as real processes, on a private PostgreSQL cluster and a',
    'private RabbitMQ node started by the harness (never the shared ones), with faults injected for real',
    '(`kill -9`, `rabbitmqctl stop_app`/`start_app`/`close_all_connections`, `pg_ctl stop -m immediate`).',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} cores (\`nproc\`), ${cpus()[0]?.model ?? 'unknown cpu'}, Node ${process.version}`,
    `- command: \`${command}\` (profile \`${profile.name}\`, ${profile.workers} workers, ${(totalMs / 1000).toFixed(0)} s in all)`,
    `- result: **${ok ? 'every invariant held' : 'INVARIANTS BROKEN'}**`,
    '',
    '| # | scenario | submitted | terminal | lost | committed twice | executions repeated | time to recover | outcome | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...results.map((r, i) => {
      const t = r.tasks;
      const byStatus = Object.entries(t.byStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return `| ${i + 1} | ${r.id}: ${r.title} | ${t.submitted} | ${t.terminal} | ${t.lost} | ${t.committedTwice} | ${t.repeatedExecutions} | ${s(r.recoverMs)} | ${byStatus} | ${r.ok ? 'pass' : '**FAIL**'} |`;
    }),
    '',
    "**Columns.** *submitted*: tasks the api accepted (for `api-kill`, every task row of the scenario's owners, also those whose",
    'answer was lost in the crash). *terminal*: in `succeeded`, `failed` or `cancelled` at the end. *lost*: accepted but not terminal',
    'after the settle deadline, or without a row. *committed twice*: tasks with more than one terminal event in the event log (per',
    'cycle between manual retries). *executions repeated*: tasks with more than one `running` event (a handler ran again after a',
    'crash, a lease takeover or a retry: allowed, at-least-once). *time to recover*: from the end of the last fault until every task',
    'was terminal.',
    '',
    "**Invariants checked over every task of every scenario**: exactly one terminal event (per manual-retry cycle); the row's status",
    "equals the last terminal event's `to_status`; no event after the terminal one except a manual retry's; no `succeeded` after",
    '`cancelled`; a succeeded task has a result; no task left non-terminal after the settle deadline',
    `(${profile.settleMs / 1000} s).`,
    '',
    '## Scenarios',
    '',
  ];
  results.forEach((r, i) => {
    lines.push(
      `### ${i + 1}. ${r.id} — ${r.ok ? 'pass' : 'FAIL'} (${(r.durationMs / 1000).toFixed(0)} s)`,
      '',
      r.title + '.',
      '',
    );
    for (const n of r.notes) lines.push(`- ${n}`);
    for (const c of r.extra)
      lines.push(`- ${c.ok ? 'ok' : '**FAILED**'}: ${c.name} — ${c.detail.replace(/\|/g, '\\|')}`);
    for (const v of r.tasks.violations) lines.push(`- **violation**: ${v}`);
    lines.push('');
  });
  lines.push(
    '## How to run',
    '',
    '```sh',
    'npm run build                      # the harness runs the built bundles',
    'npm run chaos                      # short profile (also run by `npm test` as chaos/chaos.processes.e2e-spec.ts)',
    'npm run chaos -- --profile long    # minutes per scenario',
    'npm run chaos -- --only worker-kill,duplicates',
    'npm run chaos -- --profile cluster # the cluster scenarios on a private 3-node RabbitMQ cluster (its own section)',
    '```',
    '',
    'Needs the Debian `postgresql` (15) and `rabbitmq-server` packages installed (the harness runs `initdb`/`pg_ctl` and a',
    'second RabbitMQ node with its own name, ports and data directory) and root or the `postgres`/`rabbitmq` users. Logs of every',
    'process are in `tmp/chaos-logs/`; a run that crashed is cleaned up by the next from `tmp/chaos-state.json`.',
    '',
  );
  return lines.join('\n');
}

export function writeReport(
  path: string,
  results: ScenarioResult[],
  profile: Profile,
  command: string,
  totalMs: number,
): void {
  // A cluster run's section (npm run chaos -- --profile cluster) stays: this run did not measure it.
  writeFileSync(path, renderReport(results, profile, command, totalMs) + keptClusterSection(path));
}
