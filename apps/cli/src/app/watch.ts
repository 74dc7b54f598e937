import { Presets, SingleBar } from 'cli-progress';
import type { Task, TasksysClient, TaskStreamEvent } from '@tasksys/client';
import type { Output } from './output';

/** Where a progress bar draws (the real terminal, stdout). */
export interface Terminal {
  stream: NodeJS.WritableStream;
}

/**
 * Follows a task to its terminal status. On a terminal: one live bar (cli-progress) redrawn in
 * place. Otherwise (a pipe, a file, CI logs): a plain line per change, which logs and `grep` read.
 * Returns the terminal task.
 */
export async function watchTask(client: TasksysClient, id: string, o: Output, terminal?: Terminal): Promise<Task> {
  let bar: SingleBar | undefined;
  let last = '';
  const plain = (e: TaskStreamEvent) => {
    const [status, percent, message] =
      e.event === 'status'
        ? [e.task.status, e.task.progress.percent, e.task.error?.message ?? e.task.waiting ?? e.task.progress.message]
        : ['running', e.progress.percent, e.progress.message];
    const line = `${status} ${percent}%${message ? ` ${message}` : ''}`;
    // A reconnect repeats the current status: print only what changed.
    if (line !== last) o.out(`${new Date().toISOString()} ${line}`);
    last = line;
  };
  const live = (e: TaskStreamEvent) => {
    if (!bar) {
      bar = new SingleBar(
        {
          format: '{type} [{bar}] {percentage}% | {status} | {message}',
          stream: terminal?.stream,
          hideCursor: true,
          barsize: 30,
          etaBuffer: 20,
        },
        Presets.shades_classic,
      );
      bar.start(100, 0, { type: id, status: 'waiting', message: '' });
    }
    if (e.event === 'status')
      bar.update(e.task.progress.percent, {
        type: e.task.type,
        status: e.task.status,
        message: e.task.error?.message ?? e.task.waiting ?? e.task.progress.message ?? '',
      });
    else bar.update(e.progress.percent, { status: 'running', message: e.progress.message ?? '' });
  };
  try {
    return await client.waitFor(id, { onEvent: o.isTTY && terminal ? live : plain });
  } finally {
    bar?.stop();
  }
}
