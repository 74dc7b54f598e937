import { RetryableError, toStorableJson, toTaskError } from './task.errors';

describe('what a run stores', () => {
  it('drops U+0000 and mends a string cut inside an emoji, so jsonb accepts it', () => {
    const cut = 'x'.repeat(3) + '😀'.slice(0, 1);
    expect(toStorableJson({ a: `n\u0000ul`, b: [cut] })).toEqual({ a: 'nul', b: ['xxx\uFFFD'] });
    expect(JSON.stringify(toTaskError(new Error('bad \u0000 byte')))).not.toContain('\\u0000');
  });
  it('keeps typed failures as they are', () => {
    expect(toTaskError(new RetryableError('later', 'X.LATER'))).toEqual({
      code: 'X.LATER',
      message: 'later',
      retryable: true,
    });
  });
});
