import { activeTraceparent, annotateActiveSpan, failActiveSpan, inMessagingSpan, tracingEnabled } from './spans';

describe('the tracing facade while tracing is off (the default)', () => {
  it('runs the callback as is, with no traceparent of its own, and passes its result and rejection through', async () => {
    expect(tracingEnabled()).toBe(false);
    const seen: (string | undefined)[] = [];
    await expect(
      inMessagingSpan({ operation: 'publish', destination: 'tasks', parent: '00-ab-cd-01' }, async (span) => {
        seen.push(span.traceparent);
        return 42;
      }),
    ).resolves.toBe(42);
    expect(seen).toEqual([undefined]);
    const boom = new Error('boom');
    await expect(
      inMessagingSpan({ operation: 'process', destination: 'tasks' }, () => Promise.reject(boom)),
    ).rejects.toBe(boom);
    expect(activeTraceparent()).toBeUndefined();
    expect(() => annotateActiveSpan({ a: 1 })).not.toThrow();
    expect(() => failActiveSpan({ message: 'x' })).not.toThrow();
  });
});
