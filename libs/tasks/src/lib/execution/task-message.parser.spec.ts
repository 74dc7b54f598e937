import { parseTaskMessage } from './task-message.parser';

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
