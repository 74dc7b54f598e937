import { DataSource } from 'typeorm';
import { type ApiHarness, startApi } from './testing/api-harness';

describe('overload: a busy or absent database is a 503 with Retry-After, never a 500', () => {
  let h: ApiHarness;
  let key: string;

  beforeAll(async () => {
    h = await startApi({ DATABASE_POOL_SIZE: '2' });
    key = await h.newKey('olga');
  }, 60_000);
  afterAll(() => h?.close());

  it('answers 503 when every pooled connection stays busy past the pool timeout', async () => {
    // The guard caches the key, so the request below gets as far as the create statement.
    expect((await h.call('GET', '/v1/tasks', { key })).status).toBe(200);
    const db = h.app.get(DataSource);
    // Occupy the whole pool (2) for longer than its 5 s connection timeout.
    const hogs = [db.query('SELECT pg_sleep(7)'), db.query('SELECT pg_sleep(7)')];
    const r = await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 } } });
    await Promise.allSettled(hogs);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.body).toMatchObject({ statusCode: 503, code: 'SERVICE.UNAVAILABLE' });
    // And the request wrote nothing: the task was never inserted.
    const [{ n }] = await h.t.db.query(`SELECT count(*)::int AS n FROM tasks WHERE owner = 'olga'`);
    expect(n).toBe(0);
  }, 30_000);
});
