import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { apiConfigSchema } from './api.config';
import { runApi } from './bootstrap';

describe('api configuration', () => {
  const validate = validateEnv(apiConfigSchema);

  it('has working defaults', () => {
    expect(validate({})).toMatchObject({
      PORT: 3000,
      RATE_LIMIT_PER_MINUTE: 600,
      BODY_LIMIT: '256kb',
      LOG_LEVEL: 'info',
      DATABASE_MIGRATE: true,
      DEMO_ALLOW_CRASH: false,
      TASKS_NAMESPACE: 'tasks',
      WEBHOOK_ALLOW_PRIVATE: false,
      WEBHOOK_RETRY_PERIOD_MS: 86_400_000,
      WEBHOOK_TIMEOUT_MS: 10_000,
      SCHEDULER_ENABLED: true,
      SCHEDULE_MISFIRE_GRACE_MS: 5000,
    });
    expect(validate({}).ADMIN_API_KEY).toBeUndefined();
  });

  it.each([
    ['PORT', 'http'],
    ['PORT', '70000'],
    ['RATE_LIMIT_PER_MINUTE', '0'],
    ['BODY_LIMIT', 'big'],
    ['ADMIN_API_KEY', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://x/y'],
    ['RABBITMQ_URL', 'http://x'],
    ['DEMO_ALLOW_CRASH', 'maybe'],
    ['SQL_TARGET_URL', 'nope'],
    ['WEBHOOK_ALLOW_PRIVATE', 'sometimes'],
    ['WEBHOOK_RETRY_PERIOD_MS', '10'],
    ['WEBHOOK_RETRY_PERIOD_MS', 'a day'],
    ['WEBHOOK_TIMEOUT_MS', '0'],
    ['WEBHOOK_CONCURRENCY', '0'],
    ['SCHEDULER_ENABLED', 'sometimes'],
    ['SCHEDULE_MISFIRE_GRACE_MS', '-1'],
    ['SCHEDULE_MISFIRE_GRACE_MS', 'soon'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => validate({ [name]: value })).toThrow(ConfigurationError);
    expect(() => validate({ [name]: value })).toThrow(new RegExp(`^Invalid configuration:\\n  ${name} \\(`));
  });

  it('main prints the problem without a stack trace and exits 1, before connecting to anything', async () => {
    const lines: string[] = [];
    process.env['PORT'] = 'eighty';
    process.env['DATABASE_URL'] = 'postgres://nobody@127.0.0.1:1/none';
    try {
      const app = await runApi({ stderr: (l) => lines.push(l) });
      expect(app).toBeNull();
      expect(process.exitCode).toBe(1);
      const out = lines.join('');
      expect(out).toMatch(/^Invalid configuration:\n {2}PORT \("eighty"\): .+\n$/);
      expect(out).not.toMatch(/\bat .+:\d+:\d+/); // no stack trace
    } finally {
      delete process.env['PORT'];
      delete process.env['DATABASE_URL'];
      process.exitCode = 0;
    }
  });
});
