import { createHmac } from 'node:crypto';
import { TaskStateMachine } from '@tasksys/tasks';
import { waitFor } from '@tasksys/testing';
import { type ApiHarness, startApi } from './testing/api-harness';

interface SseEvent {
  id: string | null;
  type: string;
  data: any;
}

/** A real SSE client over fetch: parses events as they arrive; `close` disconnects. */
class SseClient {
  readonly events: SseEvent[] = [];
  ended = false;
  status = 0;
  private readonly abort = new AbortController();
  private done!: Promise<void>;

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const c = new SseClient();
    const res = await fetch(url, { headers, signal: c.abort.signal });
    c.status = res.status;
    if (res.status !== 200) {
      await res.text();
      c.ended = true;
      return c;
    }
    c.done = c.read(res.body!.getReader());
    return c;
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const e: SseEvent = { id: null, type: 'message', data: '' };
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const [field, ...rest] = line.split(':');
            const value = rest.join(':').replace(/^ /, '');
            if (field === 'id') e.id = value;
            else if (field === 'event') e.type = value;
            else if (field === 'data') data += value;
          }
          if (!data && e.id === null) continue; // a heartbeat comment
          e.data = JSON.parse(data);
          this.events.push(e);
        }
      }
    } catch {
      /* aborted */
    } finally {
      this.ended = true;
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

describe('resumable SSE (real api, PostgreSQL, RabbitMQ)', () => {
  let h: ApiHarness;
  let sm: TaskStateMachine;
  let key: string;

  beforeAll(async () => {
    h = await startApi({ SSE_HEARTBEAT_MS: '1000' });
    sm = h.app.get(TaskStateMachine);
    key = await h.newKey('alice');
  });
  afterAll(() => h?.close());

  const auth = () => ({ authorization: `Bearer ${key}` });
  const submit = async () =>
    (await h.call('POST', '/v1/tasks', { key, body: { type: 'demo.sleep', payload: { ms: 1 } } })).body.id as string;
  /** Every event id of the task in the database, in order: what a client should have seen after the first one. */
  const allIds = async (id: string): Promise<string[]> =>
    (
      await h.t.db.query(
        `SELECT e.id::text AS id FROM (SELECT id FROM task_events WHERE task_id = $1 UNION ALL SELECT id FROM task_progress WHERE task_id = $1) e ORDER BY e.id`,
        [id],
      )
    ).map((r: { id: string }) => r.id);
  const describeEvent = (e: SseEvent) =>
    e.type === 'progress' ? `progress ${e.data.percent}` : `status ${e.data.status}`;

  it('replays exactly the events missed while disconnected, then goes live: none repeated, none missed', async () => {
    const id = await submit();
    const first = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream`, auth());
    await waitFor('the first status event', () => first.events.length >= 1);
    expect(first.events[0]).toMatchObject({ type: 'status', data: { id, status: 'queued' } });

    const run1 = (await sm.claim(id, 'test-worker', 60_000)).task!;
    await sm.progress(id, run1.attempt, 'test-worker', 10, 'ten', 60_000);
    await sm.progress(id, run1.attempt, 'test-worker', 20, 'twenty', 60_000);
    await waitFor('progress 20 live', () => first.events.some((e) => e.type === 'progress' && e.data.percent === 20));
    await first.close();
    const seen = first.events.map(describeEvent);
    expect(seen).toEqual(['status queued', 'status running', 'progress 10', 'progress 20']);
    const lastId = first.events.at(-1)!.id!;

    // While away: more progress, a retryable failure, a second run.
    await sm.progress(id, run1.attempt, 'test-worker', 30, 'thirty', 60_000);
    await sm.progress(id, run1.attempt, 'test-worker', 40, null, 60_000);
    await sm.failRetryable(id, run1.attempt, { code: 'X', message: 'flaky' }, 0, 'test-worker');
    const run2 = (await sm.claim(id, 'test-worker', 60_000)).task!;
    expect(run2.attempt).toBe(2);
    await sm.progress(id, run2.attempt, 'test-worker', 60, 'sixty', 60_000);

    const second = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream`, { ...auth(), 'last-event-id': lastId });
    await waitFor('the missed events', () => second.events.length >= 5);
    expect(second.events.slice(0, 5).map(describeEvent)).toEqual([
      'progress 30',
      'progress 40',
      'status retrying',
      'status running',
      'progress 60',
    ]);
    expect(second.events[2].data).toMatchObject({ status: 'retrying', attempt: 1, error: { code: 'X' } });
    expect(second.events[3].data).toMatchObject({ status: 'running', attempt: 2 });
    expect(second.events[1].data).toEqual({ id, percent: 40, message: null });

    // Live again.
    await sm.progress(id, run2.attempt, 'test-worker', 80, 'eighty', 60_000);
    await sm.succeed(id, run2.attempt, { ok: true }, 'test-worker');
    await waitFor('the stream to end after succeeded', () => second.ended);
    expect(second.events.slice(5).map(describeEvent)).toEqual(['progress 80', 'status succeeded']);
    expect(second.events.at(-1)!.data).toMatchObject({ status: 'succeeded', result: { ok: true } });

    // Every id after the first event, exactly once and in order, across both connections.
    const received = [...first.events, ...second.events].map((e) => e.id!);
    const ids = await allIds(id);
    expect(received.slice(1)).toEqual(ids.slice(ids.indexOf(received[0]) + 1));
    expect(new Set(received).size).toBe(received.length);
    expect(received.map(BigInt)).toEqual([...received.map(BigInt)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    // Resuming after the terminal event: nothing more, and the stream closes.
    const after = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream`, {
      ...auth(),
      'last-event-id': received.at(-1)!,
    });
    await waitFor('the resumed finished stream to close', () => after.ended);
    expect(after.events).toEqual([]);
  });

  it('sends every one of a burst of progress updates in order, with no gap, however notifications coalesce', async () => {
    const id = await submit();
    const client = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream`, auth());
    await waitFor('the first status event', () => client.events.length >= 1);
    const run = (await sm.claim(id, 'test-worker', 60_000)).task!;
    // Concurrent writers: the row lock orders them, and the ids follow that order.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => sm.progress(id, run.attempt, 'test-worker', i + 1, `step ${i + 1}`, 60_000)),
    );
    await sm.succeed(id, run.attempt, null, 'test-worker');
    await waitFor('the stream to end', () => client.ended, 20_000);
    const ids = await allIds(id);
    expect(client.events.map((e) => e.id)).toEqual(ids.slice(ids.indexOf(client.events[0].id!)));
    expect(client.events.filter((e) => e.type === 'progress')).toHaveLength(40);
  });

  it('answers 400 naming Last-Event-ID when it is not an event id', async () => {
    const id = await submit();
    const r = await h.call('GET', `/v1/tasks/${id}/stream`, { key, headers: { 'last-event-id': 'abc' } });
    expect(r.status).toBe(400);
    expect(r.body.field).toBe('Last-Event-ID');
  });

  it('opens the stream with a stream token instead of the Authorization header, only for its task and only on the stream', async () => {
    const id = await submit();
    const other = await submit();
    const issued = await h.call('POST', `/v1/tasks/${id}/stream-token`, { key });
    expect(issued.status).toBe(201);
    const { token, expiresAt } = issued.body;
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(4 * 60_000);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(5 * 60_000);

    const ok = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream?token=${encodeURIComponent(token)}`, {});
    expect(ok.status).toBe(200);
    await waitFor('the first status event over the token', () => ok.events.length >= 1);
    expect(ok.events[0].data).toMatchObject({ id, owner: 'alice' });
    await ok.close();

    const refused = async (path: string) => (await h.call('GET', path, { key: null })).status;
    // Another task's stream, a tampered token, another route.
    expect(await refused(`/v1/tasks/${other}/stream?token=${encodeURIComponent(token)}`)).toBe(401);
    const [v, body, sig] = token.split('.');
    const forged = `${v}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), t: other })).toString('base64url')}.${sig}`;
    expect(await refused(`/v1/tasks/${other}/stream?token=${encodeURIComponent(forged)}`)).toBe(401);
    expect(await refused(`/v1/tasks/${id}/stream?token=garbage`)).toBe(401);
    expect(await refused(`/v1/tasks/${id}?token=${encodeURIComponent(token)}`)).toBe(401);
    // Expired: a token signed with the real key (read from the database) whose expiry has passed.
    const [{ key: signingKey }] = await h.t.db.query(`SELECT key FROM stream_token_keys WHERE id = 1`);
    const claims = Buffer.from(JSON.stringify({ t: id, o: 'alice', r: 'user', e: Date.now() - 1000 })).toString(
      'base64url',
    );
    const expired = `v1.${claims}.${createHmac('sha256', signingKey).update(claims).digest('base64url')}`;
    expect(await refused(`/v1/tasks/${id}/stream?token=${encodeURIComponent(expired)}`)).toBe(401);
    // The same construction with a future expiry is accepted: the expired one failed for its expiry alone.
    const fresh = Buffer.from(JSON.stringify({ t: id, o: 'alice', r: 'user', e: Date.now() + 60_000 })).toString(
      'base64url',
    );
    const valid = `v1.${fresh}.${createHmac('sha256', signingKey).update(fresh).digest('base64url')}`;
    const accepted = await SseClient.open(`${h.baseUrl}/v1/tasks/${id}/stream?token=${encodeURIComponent(valid)}`, {});
    expect(accepted.status).toBe(200);
    await accepted.close();
    // Another owner cannot get a token for alice's task.
    expect((await h.call('POST', `/v1/tasks/${id}/stream-token`, { key: await h.newKey('mallory') })).status).toBe(404);
  });
});
