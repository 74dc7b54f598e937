/** Runs scenarios one after another on one private stack and collects their results. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { apiKill } from '../scenarios/api-kill';
import { broker } from '../scenarios/broker';
import { brokerLost } from '../scenarios/broker-lost';
import { cancelStorm } from '../scenarios/cancel-storm';
import { crashLoop } from '../scenarios/crash-loop';
import { duplicates } from '../scenarios/duplicates';
import { fuzz } from '../scenarios/fuzz';
import { load } from '../scenarios/load';
import { postgres } from '../scenarios/postgres';
import { workerKill } from '../scenarios/worker-kill';
import { ROOT } from './processes';
import type { Profile } from './profile';
import { type Scenario, type ScenarioResult, makeContext } from './scenario';
import { Stack, type StackBroker } from './stack';

export const SCENARIOS: Scenario[] = [
  workerKill,
  broker,
  brokerLost,
  postgres,
  apiKill,
  crashLoop,
  duplicates,
  cancelStorm,
  fuzz,
  load,
];

export function assertBuilt(): void {
  for (const app of ['api', 'worker']) {
    const main = join(ROOT, `dist/apps/${app}/main.js`);
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  }
}

export class ChaosRun {
  readonly stack: Stack;
  readonly results: ScenarioResult[] = [];

  constructor(
    readonly profile: Profile,
    readonly log: (m: string) => void = (m) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}`),
    broker?: StackBroker,
  ) {
    this.stack = new Stack(profile.workers, this.log, broker);
  }

  async start(): Promise<void> {
    assertBuilt();
    await this.stack.start();
  }

  async run(s: Scenario): Promise<ScenarioResult> {
    const t0 = Date.now();
    this.log(`scenario ${s.id}: ${s.title}`);
    let result: ScenarioResult;
    try {
      const r = await s.run(makeContext(this.stack, this.profile, this.log));
      const ok =
        r.tasks.lost === 0 &&
        r.tasks.committedTwice === 0 &&
        r.tasks.violations.length === 0 &&
        r.recoverMs !== null &&
        r.extra.every((c) => c.ok);
      result = { id: s.id, title: s.title, ...r, durationMs: Date.now() - t0, ok };
    } catch (err) {
      result = {
        id: s.id,
        title: s.title,
        tasks: {
          submitted: 0,
          terminal: 0,
          lost: 0,
          committedTwice: 0,
          repeatedExecutions: 0,
          byStatus: {},
          violations: [],
          checks: [],
        },
        recoverMs: null,
        extra: [
          {
            name: 'scenario ran to the end',
            ok: false,
            detail: (err as Error).stack?.split('\n').slice(0, 3).join(' ') ?? String(err),
          },
        ],
        notes: [],
        durationMs: Date.now() - t0,
        ok: false,
      };
    }
    await this.heal();
    this.results.push(result);
    const t = result.tasks;
    this.log(
      `scenario ${s.id}: ${result.ok ? 'PASS' : 'FAIL'} in ${(result.durationMs / 1000).toFixed(1)} s; submitted ${t.submitted}, terminal ${t.terminal}, lost ${t.lost}, committed twice ${t.committedTwice}, repeated ${t.repeatedExecutions}, ${JSON.stringify(t.byStatus)}`,
    );
    for (const c of result.extra) this.log(`  ${c.ok ? 'ok ' : 'BAD'} ${c.name}: ${c.detail}`);
    for (const v of t.violations) this.log(`  VIOLATION ${v}`);
    return result;
  }

  /** Between scenarios: whatever a scenario left dead is started again, so the next one starts healthy. */
  private async heal(): Promise<void> {
    try {
      for (const p of [this.stack.api, ...this.stack.workers]) p.keepDown = false;
      await this.stack.allReady(90_000);
    } catch (err) {
      this.log(`heal failed: ${(err as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    await this.stack.stop();
  }
}
