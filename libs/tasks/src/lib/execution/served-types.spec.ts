import { ConfigurationError } from '@tasksys/platform';
import { resolveServedTypes } from './served-types';

const HANDLED = ['demo.sleep', 'demo.crash', 'sql.query'];

describe('resolveServedTypes (WORKER_TASK_TYPES)', () => {
  it('defaults to every handled type the settings let this worker run', () => {
    expect(resolveServedTypes({ DEMO_ALLOW_CRASH: false }, HANDLED)).toEqual(['demo.sleep']);
    expect(resolveServedTypes({ SQL_TARGET_URL: 'postgres://x/y', DEMO_ALLOW_CRASH: true }, HANDLED)).toEqual(HANDLED);
  });

  it('serves exactly the listed types, once each', () => {
    const config = {
      DEMO_ALLOW_CRASH: false,
      SQL_TARGET_URL: 'postgres://x/y',
      WORKER_TASK_TYPES: ['sql.query', 'sql.query'],
    };
    expect(resolveServedTypes(config, HANDLED)).toEqual(['sql.query']);
  });

  it('stops start-up naming the variable and the item: no handler here, or settings it lacks', () => {
    const run = (types: string[]) => () =>
      resolveServedTypes({ DEMO_ALLOW_CRASH: false, WORKER_TASK_TYPES: types }, HANDLED);
    expect(run(['report.build'])).toThrow(ConfigurationError);
    expect(run(['report.build'])).toThrow(/WORKER_TASK_TYPES: "report\.build" has no handler/);
    expect(run(['sql.query'])).toThrow(/WORKER_TASK_TYPES: "sql\.query" cannot run here: .*SQL_TARGET_URL/);
  });
});
