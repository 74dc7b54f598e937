import { type ApiHarness, startApi } from './testing/api-harness';

// A file of its own: ConfigModule copies the validated variables into process.env, so an app started
// with WEBHOOK_ALLOW_PRIVATE=true earlier in the same test process would leak it into this one.
describe('callback urls that would reach private addresses (WEBHOOK_ALLOW_PRIVATE off)', () => {
  let h: ApiHarness;
  let key: string;
  beforeAll(async () => {
    h = await startApi();
    key = await h.newKey('erin');
    await h.call('POST', '/v1/webhooks/secret', { key });
  });
  afterAll(() => h?.close());

  it.each([
    ['http://127.0.0.1:8080/hook', /127\.0\.0\.1/],
    ['http://10.0.0.1/hook', /10\.0\.0\.1/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
    ['http://[::1]:8080/hook', /::1/],
    ['http://localhost:8080/hook', /localhost is \(or resolves to\)/],
    ['http://[::ffff:10.0.0.1]/hook', /::ffff:a00:1|10\.0\.0\.1/],
    ['http://[fd00:ec2::254]/', /fd00:ec2::254/],
    ['http://0.0.0.0/', /0\.0\.0\.0/],
    ['http://100.100.100.200/', /100\.100\.100\.200/],
    ['ftp://example.com/hook', /http or https/],
    ['http://user:secret@example.com/hook', /credentials/],
    ['not a url', /absolute http or https URL/],
  ])('refuses %s with a 400 naming callbackUrl', async (callbackUrl, message) => {
    const r = await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 }, callbackUrl } });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('callbackUrl');
    expect(r.body.message).toMatch(message);
  });

  it('names the item of a batch, and writes nothing', async () => {
    const before = await h.counts();
    const r = await h.call('POST', '/v1/tasks/batch', {
      key,
      body: {
        tasks: [
          { type: 'demo.sleep', payload: { ms: 1 } },
          { type: 'demo.sleep', payload: { ms: 1 }, callbackUrl: 'http://192.168.1.1/hook' },
        ],
      },
    });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('tasks[1].callbackUrl');
    expect(await h.counts()).toEqual(before);
  });

  it('refuses a url longer than 2048 characters', async () => {
    const callbackUrl = `https://example.com/${'a'.repeat(2048)}`;
    const r = await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 }, callbackUrl } });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('callbackUrl');
  });
});
