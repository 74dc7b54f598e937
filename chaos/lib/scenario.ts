/** What every scenario gets and returns. */
import { ApiClient } from './client';
import { checkTasks, diagnoseStuck, settle, type TaskCheck } from './invariants';
import type { Profile } from './profile';
import { ADMIN_KEY, type Stack } from './stack';

export interface ScenarioContext {
  stack: Stack;
  profile: Profile;
  log: (m: string) => void;
  /** An api client with a fresh user key (owner = the scenario's name). */
  client(owner: string): Promise<ApiClient>;
}

export interface ExtraCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  tasks: TaskCheck;
  /** From the end of the last fault to every task terminal (and the stack ready), in ms; null: not settled. */
  recoverMs: number | null;
  extra: ExtraCheck[];
  notes: string[];
  durationMs: number;
  ok: boolean;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: ScenarioContext): Promise<Omit<ScenarioResult, 'ok' | 'durationMs' | 'id' | 'title'>>;
}

export function makeContext(stack: Stack, profile: Profile, log: (m: string) => void): ScenarioContext {
  return {
    stack,
    profile,
    log,
    client: (owner) => ApiClient.createKey(() => stack.apiUrl, ADMIN_KEY, `${owner}-${Date.now()}`),
  };
}

/**
 * Common ending: wait for every task to be terminal (the settle deadline), then run the invariants.
 * `faultEndedAt` is when the last fault was lifted; recovery is measured from it.
 */
export async function settleAndCheck(
  ctx: ScenarioContext,
  ids: string[],
  faultEndedAt: number,
): Promise<{ tasks: TaskCheck; recoverMs: number | null }> {
  const waited = await settle(ctx.stack.db, ids, ctx.profile.settleMs);
  const tasks = await checkTasks(ctx.stack.db, ids);
  if (waited === null) {
    for (const line of await diagnoseStuck(ctx.stack.db, ids)) ctx.log(`  stuck: ${line}`);
    for (const q of ['work.demo.sleep', 'dead', 'unrouted', 'retry.200ms', 'retry.1s', 'retry.5s'])
      ctx.log(`  queue chaos.${q}: ${await ctx.stack.queueDepth(`chaos.${q}`).catch((e) => (e as Error).message)}`);
  }
  return { tasks, recoverMs: waited === null ? null : Math.max(0, Date.now() - faultEndedAt) };
}

export function check(name: string, ok: boolean, detail: string): ExtraCheck {
  return { name, ok, detail };
}

export function noCrashes(ctx: ScenarioContext, since: number, allowWorkers = false): ExtraCheck {
  const bad = ctx.stack.crashes(since).filter((e) => !(allowWorkers && e.name.startsWith('worker')));
  const outside = ctx.stack.unexpectedExits(since).filter((e) => e.exit.code === 0);
  const note = outside.length
    ? `; ${outside.length} graceful exit(s) on a signal from outside the harness (${outside.map((e) => e.name).join(', ')}), restarted`
    : '';
  return check(
    'no process crashed on its own',
    bad.length === 0,
    (bad.length ? bad.map((e) => `${e.name} ${JSON.stringify(e.exit)}`).join('; ') : 'none') + note,
  );
}

/** After the last fault: every process back and ready (the supervisor restarts what is down). */
export async function fleetBack(ctx: ScenarioContext): Promise<number> {
  const t0 = Date.now();
  await ctx.stack.allReady(90_000);
  return Date.now() - t0;
}
