import { ApiError } from './api-error';
import { TasksysClient } from './tasksys-client';
import type { Task, TaskStreamEvent } from './types';

const task = (status: Task['status']): Task =>
  ({ id: 't1', type: 'demo.sleep', status, progress: { percent: 0, message: null } }) as Task;

const sse = (text: string) => new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });

/**
 * These pin down the client's own reconnect logic with canned answers of a fake fetch; the same
 * helpers against the real api (and a real worker) are in apps/api/src/client.processes.e2e-spec.ts.
 */
describe('TasksysClient.stream: resuming after a disconnect', () => {
  it('reconnects when the stream ends before a terminal status, sending the last id as Last-Event-ID', async () => {
    const seen: (string | null)[] = [];
    const answers = [
      `id: 41\nevent: status\ndata: ${JSON.stringify(task('running'))}\n\n` +
        `id: 42\nevent: progress\ndata: {"id":"t1","percent":50,"message":"half"}\n\n`,
      `id: 43\nevent: status\ndata: ${JSON.stringify(task('succeeded'))}\n\n`,
    ];
    const client = new TasksysClient({
      baseUrl: 'http://api.test',
      key: 'k',
      fetch: async (_url, init) => {
        seen.push(new Headers(init?.headers).get('last-event-id'));
        return sse(answers.shift() ?? '');
      },
    });
    const events: TaskStreamEvent[] = [];
    for await (const e of client.stream('t1', { reconnectDelayMs: 10 })) events.push(e);
    expect(events.map((e) => (e.event === 'status' ? e.task.status : e.progress.percent))).toEqual([
      'running',
      50,
      'succeeded',
    ]);
    expect(seen).toEqual([null, '42']);
  });

  it('reconnects after a refused connection and a 503, and ends with an ApiError on a 404', async () => {
    let calls = 0;
    const client = new TasksysClient({
      fetch: async () => {
        calls++;
        if (calls === 1) throw new TypeError('fetch failed');
        if (calls === 2) return new Response('{"message":"busy","code":"SERVICE.UNAVAILABLE"}', { status: 503 });
        return new Response('{"statusCode":404,"message":"task t1 not found","code":"TASK.NOT_FOUND"}', {
          status: 404,
        });
      },
    });
    const consume = async () => {
      for await (const _ of client.stream('t1', { reconnectDelayMs: 5 })) void _;
    };
    const error = await consume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: 'TASK.NOT_FOUND', message: 'task t1 not found' });
    expect(calls).toBe(3);
  });

  it('stops when its signal aborts', async () => {
    const controller = new AbortController();
    const client = new TasksysClient({
      fetch: async () => {
        controller.abort(new Error('stop'));
        return sse(`event: status\ndata: ${JSON.stringify(task('running'))}\n\n`);
      },
    });
    const consume = async () => {
      for await (const _ of client.stream('t1', { signal: controller.signal, reconnectDelayMs: 5 })) void _;
    };
    await expect(consume()).rejects.toThrow('stop');
  });
});
