import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { apiConfigSchema } from './api.config';

describe('rate-limit configuration', () => {
  const validate = validateEnv(apiConfigSchema);

  it('limits requests without a valid key to 60 per minute and address by default', () => {
    expect(validate({}).RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE).toBe(60);
    expect(validate({ RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '5' }).RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE).toBe(5);
  });

  it.each(['0', 'many', '1.5', '2000000'])(
    'refuses RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE=%s at start-up, naming it',
    (value) => {
      const run = () => validate({ RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: value });
      expect(run).toThrow(ConfigurationError);
      expect(run).toThrow(/^Invalid configuration:\n {2}RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE \(/);
    },
  );
});
