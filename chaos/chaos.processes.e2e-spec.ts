/**
 * The short chaos profile as a test: each scenario of chaos/ against the built api and worker
 * bundles on a private PostgreSQL and RabbitMQ node. Name contains "processes": the test runner
 * runs it alone, after the rest. The report goes to tmp/chaos-report.md (`npm run chaos` writes
 * docs/RELIABILITY.md).
 */
import { join } from 'node:path';
import { ChaosRun, SCENARIOS } from './lib/harness';
import { ROOT } from './lib/processes';
import { PROFILES } from './lib/profile';
import { writeReport } from './lib/report';

jest.setTimeout(600_000);

describe('chaos (short profile)', () => {
  const chaos = new ChaosRun(PROFILES.short);
  const t0 = Date.now();

  beforeAll(async () => {
    await chaos.start();
  }, 300_000);

  afterAll(async () => {
    await chaos.stop();
    writeReport(
      join(ROOT, 'tmp/chaos-report.md'),
      chaos.results,
      PROFILES.short,
      'jest chaos/chaos.processes.e2e-spec.ts',
      Date.now() - t0,
    );
  }, 120_000);

  for (const scenario of SCENARIOS) {
    it(`${scenario.id}: ${scenario.title}: nothing lost, nothing committed twice`, async () => {
      const r = await chaos.run(scenario);
      expect({ scenario: r.id, lost: r.tasks.lost, committedTwice: r.tasks.committedTwice }).toEqual({
        scenario: r.id,
        lost: 0,
        committedTwice: 0,
      });
      expect(r.tasks.violations).toEqual([]);
      expect(r.extra.filter((c) => !c.ok)).toEqual([]);
      expect(r.recoverMs).not.toBeNull();
    });
  }
});
