import { parseControlMessage, parseTaskMessage } from './task-message';

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
    ['another version', Buffer.from(JSON.stringify({ v: 2, taskId: id, type: 'x' })), 'MESSAGE.UNKNOWN_VERSION'],
    ['a bad id', Buffer.from(JSON.stringify({ v: 1, taskId: 'nope', type: 'x' })), 'MESSAGE.INVALID'],
    ['no type', Buffer.from(JSON.stringify({ v: 1, taskId: id })), 'MESSAGE.INVALID'],
  ])('rejects %s', (_name, content, code) => {
    expect(parseTaskMessage(content)).toMatchObject({ ok: false, code });
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
