/** One Server-Sent Event as the HTML standard's parser dispatches it. */
export interface ServerSentEvent {
  /** `message` when the stream named none. */
  event: string;
  data: string;
  /** The last `id:` seen on the stream so far (what a reconnect sends as Last-Event-ID), if any. */
  id?: string;
  /** A `retry:` field: the reconnection delay the server asks for, in ms. */
  retry?: number;
}

/**
 * Parses a `text/event-stream` body (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * lines end in CRLF, LF or CR; `:` lines are comments (heartbeats); an empty line dispatches the event.
 * Uses only web streams, so it runs in browsers and in Node alike.
 */
export async function* parseEventStream(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let lastId: string | undefined;
  let retry: number | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk, unless none comes.
      const lineEnd = done ? /\r\n|\r|\n/g : /\r\n|\r(?!$)|\n/g;
      let end: RegExpExecArray | null;
      let start = 0;
      while ((end = lineEnd.exec(buffer)) !== null) {
        const line = buffer.slice(start, end.index);
        start = end.index + end[0].length;
        if (line === '') {
          if (data.length > 0) {
            yield { event: event || 'message', data: data.join('\n'), id: lastId, retry };
            retry = undefined;
          }
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
        else if (field === 'id' && !text.includes('\0')) lastId = text;
        else if (field === 'retry' && /^\d+$/.test(text)) retry = Number(text);
      }
      buffer = buffer.slice(start);
      if (done) return; // an event without its closing empty line is dropped, as the standard says
    }
  } finally {
    // Stops the download when the consumer stops early (break, an error): cancelling the reader cancels the body.
    await reader.cancel().catch(() => undefined);
  }
}
