import { DatabaseRetry } from './database-retry';

const lost = () => Object.assign(new Error('Connection terminated unexpectedly'), {});

describe('DatabaseRetry', () => {
  it('retries a call while the database is unreachable, then returns its answer', async () => {
    let calls = 0;
    const answer = await new DatabaseRetry().untilAnswered(async () => {
      if (++calls < 3) throw lost();
      return 'ok';
    });
    expect([answer, calls]).toEqual(['ok', 3]);
  });

  it('does not retry a bug or a statement the database refuses: it propagates at once', async () => {
    let calls = 0;
    const bug = new DatabaseRetry().untilAnswered(async () => {
      calls++;
      throw new TypeError("Cannot read properties of undefined (reading 'attempt')");
    });
    await expect(bug).rejects.toThrow(TypeError);
    await expect(
      new DatabaseRetry().untilAnswered(async () => Promise.reject(Object.assign(new Error('dup'), { code: '23505' }))),
    ).rejects.toThrow('dup');
    expect(calls).toBe(1);
  });

  it('gives up on shutdown: at once for work not started, after the last window for an outcome', async () => {
    const retry = new DatabaseRetry();
    retry.stop(300);
    expect(await retry.untilAnswered(async () => Promise.reject(lost()))).toBeUndefined();
    const started = Date.now();
    expect(await retry.untilAnswered(async () => Promise.reject(lost()), { outcome: true })).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});
