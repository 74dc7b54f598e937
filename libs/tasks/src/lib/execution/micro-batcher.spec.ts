import { MicroBatcher } from './micro-batcher';

describe('MicroBatcher', () => {
  function batcher(maxItems = 100, maxInFlight = 1) {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const b = new MicroBatcher<string, string>({
      maxItems,
      maxInFlight,
      key: (s) => s,
      run: async (items) => {
        batches.push(items);
        await new Promise<void>((r) => (release = r));
        return new Map(items.map((i) => [i, i.toUpperCase()]));
      },
    });
    return { b, batches, release: () => release() };
  }

  it('sends a lone call at once and groups the calls that arrive while it runs', async () => {
    const { b, batches, release } = batcher();
    const first = b.submit('a');
    const rest = ['b', 'c', 'd'].map((x) => b.submit(x));
    expect(batches).toEqual([['a']]);
    release();
    await expect(first).resolves.toBe('A');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
    release();
    await expect(Promise.all(rest)).resolves.toEqual(['B', 'C', 'D']);
  });

  it('never puts the same key twice in one batch', async () => {
    const { b, batches, release } = batcher();
    const p1 = b.submit('a');
    const p2 = b.submit('x');
    const p3 = b.submit('x');
    release();
    await p1;
    await new Promise((r) => setImmediate(r));
    release();
    await p2;
    await new Promise((r) => setImmediate(r));
    release();
    await p3;
    expect(batches).toEqual([['a'], ['x'], ['x']]);
  });

  it('caps the batch size and rejects every call of a failed batch', async () => {
    const b = new MicroBatcher<number, number>({
      maxItems: 2,
      maxInFlight: 1,
      key: String,
      run: async () => {
        throw new Error('db down');
      },
    });
    const calls = [1, 2, 3].map((n) => b.submit(n));
    const settled = await Promise.allSettled(calls);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
  });

  it('retries a failed batch item by item, so one bad item fails only its own caller', async () => {
    let gate: () => void = () => undefined;
    const b = new MicroBatcher<string, string>({
      maxItems: 10,
      maxInFlight: 1,
      key: (x) => x,
      run: async (items) => {
        if (items[0] === 'first') await new Promise<void>((r) => (gate = r));
        if (items.includes('bad')) throw new Error('22P05 unsupported Unicode escape');
        return new Map(items.map((i) => [i, i.toUpperCase()]));
      },
    });
    const first = b.submit('first');
    const rest = ['a', 'bad', 'c'].map((x) => b.submit(x));
    gate();
    await first;
    const settled = await Promise.allSettled(rest);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[0] as PromiseFulfilledResult<string>).value).toBe('A');
  });

  it('fails the whole group at once when `split` says the error is not about one item (no row-by-row retries)', async () => {
    let gate: () => void = () => undefined;
    const runs: string[][] = [];
    const b = new MicroBatcher<string, string>({
      maxItems: 10,
      maxInFlight: 1,
      key: (x) => x,
      split: (err) => (err as Error).message.startsWith('22'),
      run: async (items) => {
        runs.push(items);
        if (items[0] === 'first') await new Promise<void>((r) => (gate = r));
        throw new Error('08006 connection failure');
      },
    });
    const first = b.submit('first');
    const rest = ['a', 'b', 'c'].map((x) => b.submit(x));
    gate();
    await expect(first).rejects.toThrow('08006');
    expect((await Promise.allSettled(rest)).map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(runs).toEqual([['first'], ['a', 'b', 'c']]);
  });

  it('refuses calls beyond maxWaiting at once, with an OVERLOADED error, and accepts again once the queue moves', async () => {
    let gate: () => void = () => undefined;
    const b = new MicroBatcher<number, number>({
      maxItems: 10,
      maxInFlight: 1,
      maxWaiting: 2,
      key: (x) => String(x),
      run: async (items) => {
        if (items[0] === 0) await new Promise<void>((r) => (gate = r));
        return new Map(items.map((i) => [String(i), i]));
      },
    });
    const running = b.submit(0);
    const waiting = [b.submit(1), b.submit(2)];
    await expect(b.submit(3)).rejects.toMatchObject({ code: 'OVERLOADED' });
    gate();
    await running;
    expect(await Promise.all(waiting)).toEqual([1, 2]);
    await expect(b.submit(4)).resolves.toBe(4);
  });
});
