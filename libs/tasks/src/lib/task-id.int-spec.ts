import { randomUUID } from 'node:crypto';
import { validate, version } from 'uuid';
import { createTestDatabase, type TestDatabase } from '../testing';
import { CreateTaskBatchCommand } from './commands/create-task-batch.command';
import { TaskStateMachine } from './task-state-machine';

describe('task ids on every way in (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  let batch: CreateTaskBatchCommand;

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    batch = new CreateTaskBatchCommand(sm);
  });
  afterAll(() => t.drop());

  const base = { owner: 'alice', type: 'demo.sleep', payload: { ms: 1 }, maxAttempts: 3, timeoutMs: 60_000 };
  const isV7 = (id: string) => validate(id) && version(id) === 7;

  it('gives batch, single and idempotent submits UUIDv7 ids that PostgreSQL orders as they were made', async () => {
    const first = await batch.execute(
      Array.from({ length: 50 }, () => ({ ...base, start: true })),
      { actor: 'owner:alice' },
    );
    const single = await batch.createOne({ ...base, start: false }, { actor: 'owner:alice' });
    const keyed = await sm.create({ ...base, idempotencyKey: 'k-1' }, { start: true, actor: 'owner:alice' });
    const made = [...first.map((x) => x.id), single.id, keyed.task.id];
    expect(made.every(isV7)).toBe(true);
    const rows: { id: string }[] = await t.db.query(`SELECT id FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id`, [
      made,
    ]);
    expect(rows.map((r) => r.id)).toEqual(made);
  });

  it('keeps the id create() is given, any UUID, and answers a repeated key with the first task', async () => {
    const given = randomUUID(); // a v4: ids are never checked for their version
    const { created, task } = await sm.create(
      { ...base, id: given, idempotencyKey: 'k-2' },
      { start: false, actor: 'x' },
    );
    expect({ created, id: task.id }).toEqual({ created: true, id: given });
    const again = await sm.create({ ...base, idempotencyKey: 'k-2' }, { start: false, actor: 'x' });
    expect({ created: again.created, id: again.task.id }).toEqual({ created: false, id: given });
  });
});
