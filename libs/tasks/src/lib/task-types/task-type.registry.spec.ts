import { BUILTIN_TASK_TYPES } from './builtin-task-types';
import { TaskTypeRegistry } from './task-type.registry';

describe('TaskTypeRegistry', () => {
  const registry = new TaskTypeRegistry(BUILTIN_TASK_TYPES, { DEMO_ALLOW_CRASH: false });

  it('accepts a valid payload', () => {
    expect(registry.check('demo.sleep', { ms: 10, steps: 2 })).toMatchObject({
      ok: true,
      payload: { ms: 10, steps: 2 },
    });
  });
  it.each([
    ['nope', { ms: 1 }, 'type'],
    ['demo.sleep', { ms: -1 }, 'payload.ms'],
    ['demo.sleep', { ms: 1, extra: true }, 'payload.extra'],
    ['demo.sleep', 'not an object', 'payload'],
    ['demo.crash', { afterMs: 1 }, 'type'],
    ['sql.query', { sql: 'select 1' }, 'type'],
  ])('rejects %s %j naming %s', (type, payload, field) => {
    expect(registry.check(type, payload)).toMatchObject({ ok: false, field });
  });
  it('enables configured types', () => {
    const r = new TaskTypeRegistry(BUILTIN_TASK_TYPES, { DEMO_ALLOW_CRASH: true, SQL_TARGET_URL: 'postgres://x/y' });
    expect(r.check('demo.crash', { afterMs: 5 }).ok).toBe(true);
    expect(r.check('sql.query', { sql: 'select 1', params: [1, 'a', null] }).ok).toBe(true);
  });
});
