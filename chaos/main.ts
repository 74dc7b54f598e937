/**
 * `npm run chaos [-- --profile short|long|cluster] [--only id,id] [--report path]`: runs the fault-injection
 * scenarios against the built bundles and writes docs/RELIABILITY.md. Exits 1 when any invariant breaks.
 * `cluster` runs the cluster scenarios on a private 3-node RabbitMQ cluster and writes only the report's
 * cluster section.
 */
import { join } from 'node:path';
import { ClusterBroker } from './lib/cluster';
import { writeClusterReport } from './lib/cluster-report';
import { ChaosRun, SCENARIOS } from './lib/harness';
import { ROOT } from './lib/processes';
import { CLUSTER_PROFILE, type Profile, PROFILES } from './lib/profile';
import { writeReport } from './lib/report';
import { CLUSTER_SCENARIOS } from './scenarios/cluster';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const profileName = arg('profile') ?? 'short';
  const onCluster = profileName === 'cluster';
  const profile: Profile | undefined = onCluster ? CLUSTER_PROFILE : PROFILES[profileName as 'short' | 'long'];
  if (!profile) throw new Error(`unknown profile ${profileName} (short | long | cluster)`);
  const all = onCluster ? CLUSTER_SCENARIOS : SCENARIOS;
  const only = arg('only')?.split(',');
  const scenarios = only ? all.filter((s) => only.includes(s.id)) : all;
  if (scenarios.length === 0)
    throw new Error(`no scenario matches --only ${only?.join(',')}; ids: ${all.map((s) => s.id).join(', ')}`);
  const report = arg('report') ?? join(ROOT, 'docs/RELIABILITY.md');
  const command = `npm run chaos${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;

  const t0 = Date.now();
  const log = (m: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}`);
  const chaos = new ChaosRun(profile, log, onCluster ? new ClusterBroker(log) : undefined);
  let stopping = false;
  const onSignal = async () => {
    if (stopping) return;
    stopping = true;
    console.error('interrupted: tearing down');
    await chaos.stop().catch(() => undefined);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await chaos.start();
    for (const s of scenarios) await chaos.run(s);
  } finally {
    await chaos.stop().catch((e) => console.error(`teardown: ${(e as Error).message}`));
  }
  if (onCluster) writeClusterReport(report, chaos.results, profile, command, Date.now() - t0);
  else writeReport(report, chaos.results, profile, command, Date.now() - t0);
  const failed = chaos.results.filter((r) => !r.ok);
  console.log(`\n${chaos.results.length - failed.length} scenarios passed, ${failed.length} failed; report: ${report}`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
