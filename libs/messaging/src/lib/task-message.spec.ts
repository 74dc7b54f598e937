import { MAX_BUNDLE_TASKS, parseControlMessage, parseTaskMessage, parseWorkMessage, taskIdsOf } from './task-message';

describe('parseTaskMessage', () => {
  const id = '6f1c1d4e-2b7a-4c1e-9a53-0d5f1f7f2a10';
  it('reads a valid message', () => {
    expect(parseTaskMessage(Buffer.from(JSON.stringify({ v: 1, taskId: id, type: 'demo.sleep' })))).toEqual({
      ok: true,
      message: { v: 1, taskId: id, type: 'demo.sleep' },
    });
  });
  it.each([
    ['garbage', Buffer.from([0xff, 0x00, 0x13]), 'MESSAGE.NOT_JSON'],
    ['an array', Buffer.from('[1]'), 'MESSAGE.INVALID'],
    ['another version', Buffer.from(JSON.stringify({ v: 3, taskId: id, type: 'x' })), 'MESSAGE.UNKNOWN_VERSION'],
    [
      'a bundle',
      Buffer.from(JSON.stringify({ v: 2, taskIds: [id, id.replace('6f', '7f')], type: 'x' })),
      'MESSAGE.UNKNOWN_VERSION',
    ],
    ['a bad id', Buffer.from(JSON.stringify({ v: 1, taskId: 'nope', type: 'x' })), 'MESSAGE.INVALID'],
    ['no type', Buffer.from(JSON.stringify({ v: 1, taskId: id })), 'MESSAGE.INVALID'],
  ])('rejects %s', (_name, content, code) => {
    expect(parseTaskMessage(content)).toMatchObject({ ok: false, code });
  });
});

describe('parseWorkMessage (one task or a bundle)', () => {
  const ids = [
    '6f1c1d4e-2b7a-4c1e-9a53-0d5f1f7f2a10',
    '0190b7e2-2b7a-7c1e-9a53-0d5f1f7f2a11',
    '0190B7E2-2B7A-7C1E-9A53-0D5F1F7F2A12',
  ];
  const body = (b: unknown) => Buffer.from(JSON.stringify(b));
  it('reads a bundle, ids lowercase and in order, and a single-task message', () => {
    const read = parseWorkMessage(body({ v: 2, type: 'demo.sleep', taskIds: ids }));
    expect(read).toEqual({
      ok: true,
      message: { v: 2, type: 'demo.sleep', taskIds: ids.map((x) => x.toLowerCase()) },
    });
    expect(read.ok && taskIdsOf(read.message)).toEqual(ids.map((x) => x.toLowerCase()));
    const one = parseWorkMessage(body({ v: 1, taskId: ids[0], type: 'demo.sleep' }));
    expect(one.ok && taskIdsOf(one.message)).toEqual([ids[0]]);
  });
  it.each([
    ['one id (travels as v1)', { v: 2, type: 'x', taskIds: [ids[0]] }],
    ['no ids', { v: 2, type: 'x', taskIds: [] }],
    ['ids not a list', { v: 2, type: 'x', taskIds: ids[0] }],
    ['a bad id', { v: 2, type: 'x', taskIds: [ids[0], 'nope'] }],
    ['the same id twice (any case)', { v: 2, type: 'x', taskIds: [ids[2], ids[2].toLowerCase()] }],
    ['no type', { v: 2, taskIds: ids }],
    [
      `more than ${MAX_BUNDLE_TASKS} ids`,
      {
        v: 2,
        type: 'x',
        taskIds: Array.from(
          { length: MAX_BUNDLE_TASKS + 1 },
          (_, i) => `6f1c1d4e-2b7a-4c1e-9a53-${String(i).padStart(12, '0')}`,
        ),
      },
    ],
  ])('rejects a bundle with %s', (_name, b) => {
    expect(parseWorkMessage(body(b))).toMatchObject({ ok: false, code: 'MESSAGE.INVALID' });
  });
});

describe('parseTaskMessage ids', () => {
  it('lowercases the task id, as PostgreSQL returns it', () => {
    const upper = '6F1C1D4E-2B7A-4C1E-9A53-0D5F1F7F2A10';
    expect(parseTaskMessage(Buffer.from(JSON.stringify({ v: 1, taskId: upper, type: 'x' })))).toMatchObject({
      ok: true,
      message: { taskId: upper.toLowerCase() },
    });
  });
});

describe('parseControlMessage', () => {
  const id = '6f1c1d4e-2b7a-4c1e-9a53-0d5f1f7f2a10';
  it('reads a cancel signal with the attempt it cancels, and one of an older version without', () => {
    expect(parseControlMessage(Buffer.from(JSON.stringify({ v: 1, kind: 'cancel', taskId: id, attempt: 3 })))).toEqual({
      v: 1,
      kind: 'cancel',
      taskId: id,
      attempt: 3,
    });
    expect(parseControlMessage(Buffer.from(JSON.stringify({ v: 1, kind: 'cancel', taskId: id })))).toEqual({
      v: 1,
      kind: 'cancel',
      taskId: id,
    });
  });
  it.each([
    ['garbage', Buffer.from('{')],
    ['another kind', Buffer.from(JSON.stringify({ v: 1, kind: 'pause', taskId: id }))],
    ['a bad id', Buffer.from(JSON.stringify({ v: 1, kind: 'cancel', taskId: 'nope' }))],
    ['a bad attempt', Buffer.from(JSON.stringify({ v: 1, kind: 'cancel', taskId: id, attempt: -1 }))],
  ])('drops %s', (_name, content) => {
    expect(parseControlMessage(content)).toBeNull();
  });
});
