import { ERROR_CODES } from './error-codes';

describe('ERROR_CODES', () => {
  it('keeps every released code string: clients, stored tasks and dead letters carry them', () => {
    expect(Object.values(ERROR_CODES).sort()).toEqual(
      [
        'AUTH.FORBIDDEN',
        'AUTH.UNAUTHENTICATED',
        'BROKER.UNAVAILABLE',
        'CONFIG.INVALID',
        'INTERNAL',
        'MESSAGE.INVALID',
        'MESSAGE.NOT_JSON',
        'MESSAGE.UNKNOWN_VERSION',
        'MESSAGING.PUBLISH_FAILED',
        'MESSAGING.TOPOLOGY_MISMATCH',
        'NOT_FOUND',
        'OVERLOADED',
        'OWNER.MAX_QUEUED',
        'RATE_LIMITED',
        'REQUEST.INVALID',
        'REQUEST.MALFORMED_JSON',
        'REQUEST.TOO_LARGE',
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        'SCHEDULE.NAME_TAKEN',
        'SCHEDULE.NOT_FOUND',
        'SERVICE.UNAVAILABLE',
        'TASK.ABANDONED',
        'TASK.HANDLER_ERROR',
        'TASK.IDEMPOTENCY_CONFLICT',
        'TASK.INVALID_PAYLOAD',
        'TASK.INVALID_TRANSITION',
        'TASK.NOT_FOUND',
        'TASK.NO_HANDLER',
        'TASK.RETRYABLE',
        'TASK.TIMEOUT',
        'TASK.UNRECOVERABLE',
        'WORKER.INTERNAL_ERROR',
      ].sort(),
    );
  });

  it('names each code once', () => {
    const values = Object.values(ERROR_CODES);
    expect(new Set(values).size).toBe(values.length);
  });
});
