import { type ApiHarness, startApi } from './testing/api-harness';

describe('rate limit per API key', () => {
  let h: ApiHarness;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    h = await startApi({ RATE_LIMIT_PER_MINUTE: '5' });
    // Issued with the admin key, which has its own budget.
    alice = await h.newKey('alice');
    bob = await h.newKey('bob');
  });
  afterAll(() => h?.close());

  it('answers 429 with Retry-After once a key used its budget, while other keys and probes go on', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await h.call('GET', '/v1/tasks', { key: alice })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const limited = await h.call('GET', '/v1/tasks', { key: alice });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED' });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // A limited request writes nothing either.
    const before = await h.counts();
    expect(
      (await h.call('POST', '/v1/tasks', { key: alice, body: { type: 'demo.sleep', payload: { ms: 1 } } })).status,
    ).toBe(429);
    expect(await h.counts()).toEqual(before);
    expect((await h.call('GET', '/v1/tasks', { key: bob })).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await h.call('GET', '/health/live', { key: null })).status).toBe(200);
  });
});
