import { inspect } from 'node:util';

/**
 * Thrown from a `waitFor` check to end the wait at once, when what it waits for can no longer
 * happen (the process it polls has exited). Any other error is kept and the check tried again.
 */
export class GiveUp extends Error {
  override readonly name = 'GiveUp';
}

/** What a truthy check returned: T without null, undefined, false, 0 and ''. */
export type Truthy<T> = Exclude<T, null | undefined | false | 0 | 0n | ''>;

/**
 * Polls `check` every `everyMs` until it returns a truthy value, and returns that value. A check
 * that throws is tried again (a server not listening yet) unless it throws `GiveUp`. Past
 * `timeoutMs` it fails with "timed out after <timeoutMs> ms waiting for <what>" and what the last
 * check returned or threw, so the failure says what was awaited and how far it got.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let checks = 0;
  let last: string;
  for (;;) {
    checks++;
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = `the last returned ${inspect(value, { depth: 2, breakLength: Infinity })}`;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = `the last threw ${error instanceof Error ? `${error.name}: ${error.message}` : inspect(error)}`;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${checks} checks; ${last.slice(0, 500)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(everyMs, left)));
  }
}
