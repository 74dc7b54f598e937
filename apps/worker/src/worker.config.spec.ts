import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { workerAppConfigSchema } from './worker.config';

describe('worker configuration', () => {
  const validate = validateEnv(workerAppConfigSchema);

  it('caps sql.query results at 16 MiB by default', () => {
    expect(validate({}).SQL_MAX_RESULT_BYTES).toBe(16 * 1024 * 1024);
    expect(validate({ SQL_MAX_RESULT_BYTES: '1048576' }).SQL_MAX_RESULT_BYTES).toBe(1_048_576);
  });

  it.each(['16MB', '1000', '1e12', '-1'])(
    'refuses SQL_MAX_RESULT_BYTES=%s at start-up, naming the variable',
    (value) => {
      expect(() => validate({ SQL_MAX_RESULT_BYTES: value })).toThrow(ConfigurationError);
      expect(() => validate({ SQL_MAX_RESULT_BYTES: value })).toThrow(
        new RegExp(`^Invalid configuration:\\n  SQL_MAX_RESULT_BYTES \\("${value}"\\): `),
      );
    },
  );
});
