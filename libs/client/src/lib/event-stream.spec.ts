import { parseEventStream, type ServerSentEvent } from './event-stream';

/** A body delivered in the given chunks, as a network would split it. */
function body(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
}

async function all(stream: ReadableStream<Uint8Array>): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = [];
  for await (const e of parseEventStream(stream)) out.push(e);
  return out;
}

describe('parseEventStream (text/event-stream)', () => {
  it('dispatches events on an empty line, skips comments and joins multi-line data', async () => {
    const events = await all(body(': heartbeat\n\nevent: status\ndata: {"a":\ndata: 1}\n\ndata: plain\n\n'));
    expect(events).toEqual([
      { event: 'status', data: '{"a":\n1}', id: undefined, retry: undefined },
      { event: 'message', data: 'plain', id: undefined, retry: undefined },
    ]);
  });

  it('handles CRLF and CR line ends and lines split across chunks (a CRLF split between chunks too)', async () => {
    const events = await all(body('event: prog', 'ress\r', '\ndata: 1\r\n\r', '\nevent: status\rdata: 2\r\r'));
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ['progress', '1'],
      ['status', '2'],
    ]);
  });

  it('keeps the last id for the following events (what a reconnect sends) and reads retry', async () => {
    const events = await all(body('id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid: 9\ndata: c\n\n'));
    expect(events).toEqual([
      { event: 'message', data: 'a', id: '7', retry: 1500 },
      { event: 'message', data: 'b', id: '7', retry: undefined },
      { event: 'message', data: 'c', id: '9', retry: undefined },
    ]);
  });

  it('drops an event the stream ended in the middle of', async () => {
    expect(await all(body('data: whole\n\ndata: cut'))).toEqual([
      { event: 'message', data: 'whole', id: undefined, retry: undefined },
    ]);
  });
});
