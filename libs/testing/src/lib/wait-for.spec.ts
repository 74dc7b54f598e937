import { GiveUp, waitFor } from './wait-for';

describe('waitFor', () => {
  it('returns the first truthy value, trying again after falsy answers and errors', async () => {
    const answers: (() => number)[] = [
      () => 0,
      () => {
        throw new Error('not listening yet');
      },
      () => 42,
    ];
    let calls = 0;
    await expect(waitFor('the answer', () => answers[calls++](), 1000, 1)).resolves.toBe(42);
    expect(calls).toBe(3);
  });

  it('fails after the deadline naming what it waited for and what the last check returned', async () => {
    const started = Date.now();
    await expect(waitFor('three rows', async () => ({ rows: 2 }).rows === 3, 150, 10)).rejects.toThrow(
      /^timed out after 150 ms waiting for three rows \(\d+ checks; the last returned false\)$/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('names the last error when the last check threw', async () => {
    const check = () => {
      throw new Error('ECONNREFUSED 127.0.0.1:1');
    };
    await expect(waitFor('the server', check, 50, 10)).rejects.toThrow(
      /waiting for the server \(\d+ checks; the last threw Error: ECONNREFUSED 127\.0\.0\.1:1\)$/,
    );
  });

  it('ends at once when a check throws GiveUp', async () => {
    let calls = 0;
    const check = () => {
      calls++;
      throw new GiveUp('the process exited');
    };
    const started = Date.now();
    await expect(waitFor('the process', check, 10_000, 10)).rejects.toBeInstanceOf(GiveUp);
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
