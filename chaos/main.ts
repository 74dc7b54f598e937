/**
 * `npm run chaos [-- --profile short|long] [--only id,id] [--report path]`: runs the fault-injection
 * scenarios against the built bundles and writes docs/RELIABILITY.md. Exits 1 when any invariant breaks.
 */
import { join } from 'node:path';
import { ChaosRun, SCENARIOS } from './lib/harness';
import { ROOT } from './lib/processes';
import { PROFILES } from './lib/profile';
import { writeReport } from './lib/report';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const profileName = (arg('profile') ?? 'short') as 'short' | 'long';
  const profile = PROFILES[profileName];
  if (!profile) throw new Error(`unknown profile ${profileName} (short | long)`);
  const only = arg('only')?.split(',');
  const scenarios = only ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS;
  if (scenarios.length === 0)
    throw new Error(`no scenario matches --only ${only?.join(',')}; ids: ${SCENARIOS.map((s) => s.id).join(', ')}`);
  const report = arg('report') ?? join(ROOT, 'docs/RELIABILITY.md');
  const command = `npm run chaos${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;

  const t0 = Date.now();
  const chaos = new ChaosRun(profile);
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
  writeReport(report, chaos.results, profile, command, Date.now() - t0);
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
