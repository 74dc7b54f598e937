import { redactUrl } from './logging.module';

describe('request urls in logs', () => {
  it('mask a stream token wherever it stands in the query, and leave other urls alone', () => {
    expect(redactUrl('/v1/tasks/x/stream?token=v1.abc.def')).toBe('/v1/tasks/x/stream?token=[redacted]');
    expect(redactUrl('/v1/tasks/x/stream?a=1&token=v1.abc.def&b=2')).toBe(
      '/v1/tasks/x/stream?a=1&token=[redacted]&b=2',
    );
    expect(redactUrl('/v1/tasks?status=queued')).toBe('/v1/tasks?status=queued');
    expect(redactUrl(undefined)).toBeUndefined();
  });
});
