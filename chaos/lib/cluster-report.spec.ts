import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeClusterReport } from './cluster-report';
import { CLUSTER_PROFILE, PROFILES } from './profile';
import { writeReport } from './report';
import type { ScenarioResult } from './scenario';

const result = (id: string): ScenarioResult => ({
  id,
  title: `${id} title`,
  tasks: {
    submitted: 10,
    terminal: 10,
    lost: 0,
    committedTwice: 0,
    repeatedExecutions: 0,
    byStatus: { succeeded: 10 },
    violations: [],
    checks: [],
  },
  recoverMs: 1000,
  extra: [],
  notes: [],
  durationMs: 5000,
  ok: true,
});

describe('RELIABILITY.md: the cluster section and the single-node report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-report-'));
  const path = join(dir, 'RELIABILITY.md');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the cluster section when the single-node report is written again, and replaces it on the next cluster run', () => {
    writeReport(path, [result('worker-kill')], PROFILES.short, 'npm run chaos', 1000);
    writeClusterReport(path, [result('cluster-leader-kill')], CLUSTER_PROFILE, 'npm run chaos -- --profile cluster', 1);
    writeReport(path, [result('broker-restart')], PROFILES.short, 'npm run chaos', 1000);
    let text = readFileSync(path, 'utf8');
    expect(text).toContain('| 1 | broker-restart:');
    expect(text).not.toContain('| 1 | worker-kill:');
    expect(text).toContain('| C1 | cluster-leader-kill:');

    writeClusterReport(path, [result('cluster-node-return')], CLUSTER_PROFILE, 'npm run chaos -- --profile cluster', 1);
    text = readFileSync(path, 'utf8');
    expect(text).toContain('| C1 | cluster-node-return:');
    expect(text).not.toContain('| C1 | cluster-leader-kill:');
    expect(text).toContain('| 1 | broker-restart:');
    expect(text.match(/cluster-profile:begin/g)).toHaveLength(1);
  });
});
