import { continueTrace } from './trace-context';

describe('continueTrace', () => {
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('keeps the trace id and flags of a valid traceparent and makes a new span id', () => {
    const out = continueTrace(incoming);
    expect(out).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(out).not.toBe(incoming);
  });
  it.each([
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
  ])('starts a new trace for %p', (header) => {
    const out = continueTrace(header);
    expect(out).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(out.slice(3, 35)).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
