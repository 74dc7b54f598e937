/**
 * The cluster profile in CI: a private 3-node RabbitMQ cluster (started once, ~1 min here), the built
 * api and workers on it with quorum queues, and the scenario that matters most for a cluster: kill -9
 * of the node holding the work queues' leaders mid-run. `npm run chaos -- --profile cluster` runs all
 * four. Name contains "processes": the test runner runs it alone. Report: tmp/chaos-cluster-report.md.
 */
import { join } from 'node:path';
import { ClusterBroker } from './lib/cluster';
import { writeClusterReport } from './lib/cluster-report';
import { ChaosRun } from './lib/harness';
import { ROOT } from './lib/processes';
import { CLUSTER_PROFILE } from './lib/profile';
import { clusterLeaderKill } from './scenarios/cluster';

jest.setTimeout(600_000);

describe('chaos on a RabbitMQ cluster (cluster profile)', () => {
  const log = (m: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}`);
  const broker = new ClusterBroker(log);
  const chaos = new ChaosRun(CLUSTER_PROFILE, log, broker);
  const t0 = Date.now();

  beforeAll(async () => {
    await chaos.start();
  }, 400_000);

  afterAll(async () => {
    await chaos.stop();
    writeClusterReport(
      join(ROOT, 'tmp/chaos-cluster-report.md'),
      chaos.results,
      CLUSTER_PROFILE,
      'jest chaos/cluster.processes.e2e-spec.ts',
      Date.now() - t0,
    );
  }, 120_000);

  it(`${clusterLeaderKill.id}: nothing lost, nothing committed twice, no process restarted, the node back`, async () => {
    const r = await chaos.run(clusterLeaderKill);
    expect({ scenario: r.id, lost: r.tasks.lost, committedTwice: r.tasks.committedTwice }).toEqual({
      scenario: r.id,
      lost: 0,
      committedTwice: 0,
    });
    expect(r.tasks.terminal).toBe(r.tasks.submitted);
    // Two batches of a third of the profile, and at least one batch of five during the fault.
    expect(r.tasks.submitted).toBeGreaterThanOrEqual(2 * Math.ceil(CLUSTER_PROFILE.cluster.tasks / 3) + 5);
    expect(r.tasks.violations).toEqual([]);
    expect(r.extra.filter((c) => !c.ok)).toEqual([]);
    expect(r.recoverMs).not.toBeNull();
  });
});
