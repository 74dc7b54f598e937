#!/usr/bin/env node
// Runs the whole suite in two phases and prints one closing line "N passed, N failed":
//  1. every test file in parallel jest workers, except
//  2. files that restart the broker or kill processes (names matching SERIAL), one at a time,
//     because `rabbitmqctl stop_app` or a CPU-heavy fleet would disturb tests running beside them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const SERIAL = 'faults|processes';
const extra = process.argv.slice(2);
mkdirSync('tmp', { recursive: true });

function phase(name, args) {
  const out = `tmp/jest-${name}.json`;
  rmSync(out, { force: true });
  const r = spawnSync('npx', ['jest', '--ci', '--json', `--outputFile=${out}`, ...args, ...extra], {
    stdio: 'inherit',
  });
  try {
    const j = JSON.parse(readFileSync(out, 'utf8'));
    return {
      passed: j.numPassedTests,
      failed: j.numFailedTests,
      brokenSuites: j.numRuntimeErrorTestSuites,
      ok: r.status === 0,
    };
  } catch {
    return { passed: 0, failed: 0, brokenSuites: 1, ok: false };
  }
}

const parallel = phase('parallel', ['--maxWorkers=2', `--testPathIgnorePatterns=${SERIAL}`]);
const serial = phase('serial', ['--runInBand', '--passWithNoTests', `--testPathPatterns=${SERIAL}`]);
const passed = parallel.passed + serial.passed;
// A suite that could not run counts as a failure, so the line never hides it.
const failed = parallel.failed + serial.failed + parallel.brokenSuites + serial.brokenSuites;
console.log(`${passed} passed, ${failed} failed`);
process.exit(parallel.ok && serial.ok && failed === 0 ? 0 : 1);
