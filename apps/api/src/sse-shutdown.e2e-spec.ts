import { type ApiHarness, startApi } from './testing/api-harness';

describe('SSE and shutdown', () => {
  let h: ApiHarness | null = null;
  afterAll(() => h?.close());

  it('sends heartbeat comments on a quiet stream, and shutting down ends open streams instead of waiting for clients', async () => {
    h = await startApi({ SSE_HEARTBEAT_MS: '100' });
    const key = await h.newKey('alice');
    const { body: t } = await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 } } });
    const res = await fetch(`${h.baseUrl}/v1/tasks/${t.id}/stream`, { headers: { authorization: `Bearer ${key}` } });
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!/^: heartbeat$/m.test(text)) {
      if (Date.now() > deadline) throw new Error(`no heartbeat in ${JSON.stringify(text)}`);
      text += new TextDecoder().decode((await reader.read()).value);
    }
    expect(text).toMatch(/^event: status$/m);
    const closing = h.close();
    h = null;
    const started = Date.now();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      if (Date.now() - started > 5000) throw new Error('stream still open 5 s after shutdown began');
    }
    await closing;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
