import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { retentionConfigSchema } from './retention.config';

describe('retention configuration', () => {
  const validate = validateEnv(retentionConfigSchema);

  it('keeps finished tasks 30 days by default, deleting 1,000 a statement, 100 ms apart, a round a minute', () => {
    expect(validate({})).toEqual({
      TASK_RETENTION_MS: 30 * 86_400_000,
      TASK_RETENTION_BATCH_SIZE: 1000,
      TASK_RETENTION_PAUSE_MS: 1000,
      TASK_RETENTION_INTERVAL_MS: 60_000,
    });
  });

  it('takes 0 as "keep forever" and any retention from a second up', () => {
    expect(validate({ TASK_RETENTION_MS: '0' }).TASK_RETENTION_MS).toBe(0);
    expect(validate({ TASK_RETENTION_MS: '1000' }).TASK_RETENTION_MS).toBe(1000);
    expect(validate({ TASK_RETENTION_MS: '604800000' }).TASK_RETENTION_MS).toBe(604_800_000);
  });

  it.each([
    ['TASK_RETENTION_MS', '30d'],
    ['TASK_RETENTION_MS', '500'],
    ['TASK_RETENTION_MS', '-1'],
    ['TASK_RETENTION_BATCH_SIZE', '0'],
    ['TASK_RETENTION_BATCH_SIZE', '100000'],
    ['TASK_RETENTION_PAUSE_MS', '-5'],
    ['TASK_RETENTION_INTERVAL_MS', '10'],
  ])('refuses %s=%s at start-up, naming the variable', (name, value) => {
    expect(() => validate({ [name]: value })).toThrow(ConfigurationError);
    expect(() => validate({ [name]: value })).toThrow(
      new RegExp(`^Invalid configuration:\\n  ${name} \\("${value}"\\): `),
    );
  });
});
