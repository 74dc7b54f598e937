import type { BrokerMessage, Task, TaskEvent, Worker } from '@tasksys/client';

/** Where commands write: stdout for results, stderr for diagnostics (tests pass their own). */
export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Whether stdout is a terminal (a live progress bar) or a pipe or file (plain lines). */
  isTTY: boolean;
}

export function json(o: Output, value: unknown): void {
  o.out(JSON.stringify(value, null, 2));
}

/** Columns padded to their widest cell, as `kubectl get` and `gh ... list` print them. */
export function table(o: Output, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  o.out(line(header));
  for (const r of rows) o.out(line(r));
}

const dash = (v: string | number | null | undefined) => (v === null || v === undefined || v === '' ? '-' : String(v));

export function taskSummary(o: Output, t: Task): void {
  const rows: [string, string][] = [
    ['id', t.id],
    ['type', t.type],
    ['status', t.waiting ? `${t.status} (${t.waiting})` : t.status],
    ['progress', `${t.progress.percent}%${t.progress.message ? ` ${t.progress.message}` : ''}`],
    ['attempt', `${t.attempt} of ${t.maxAttempts}`],
    ['priority', String(t.priority)],
    ['owner', t.owner],
    ['created', t.createdAt],
    ['started', dash(t.startedAt)],
    ['finished', dash(t.finishedAt)],
  ];
  if (t.runAt) rows.push(['runs at', t.runAt]);
  if (t.error) rows.push(['error', `${t.error.code}: ${t.error.message}`]);
  if (t.result !== null && t.result !== undefined) rows.push(['result', JSON.stringify(t.result)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) o.out(`${k.padEnd(width)}  ${v}`);
}

export function taskTable(o: Output, tasks: Task[]): void {
  table(
    o,
    ['ID', 'TYPE', 'STATUS', 'PROGRESS', 'ATTEMPT', 'CREATED'],
    tasks.map((t) => [t.id, t.type, t.status, `${t.progress.percent}%`, `${t.attempt}/${t.maxAttempts}`, t.createdAt]),
  );
}

export function eventTable(o: Output, events: TaskEvent[]): void {
  table(
    o,
    ['AT', 'FROM', 'TO', 'ATTEMPT', 'ACTOR', 'ERROR'],
    events.map((e) => [
      e.at,
      dash(e.from),
      e.to,
      String(e.attempt),
      e.actor,
      e.error ? `${e.error.code}: ${e.error.message}` : '',
    ]),
  );
}

export function messageTable(o: Output, queue: string, total: number, items: BrokerMessage[]): void {
  o.err(`${queue}: ${total} message${total === 1 ? '' : 's'}${items.length < total ? `, first ${items.length}` : ''}`);
  table(
    o,
    ['TASK', 'TYPE', 'REASON', 'AT'],
    items.map((m) => [
      dash(m.taskId ?? (m.malformed ? 'malformed' : null)),
      dash(m.type),
      dash(m.reasonCode ? `${m.reasonCode}${m.reason ? `: ${m.reason}` : ''}` : m.reason),
      dash(m.deadLetteredAt),
    ]),
  );
}

export function workerTable(o: Output, expected: number, alive: number, workers: Worker[]): void {
  o.err(`${alive} alive of ${expected} expected`);
  table(
    o,
    ['ID', 'HOST', 'PID', 'IN FLIGHT', 'ALIVE', 'LAST SEEN'],
    workers.map((w) => [
      w.id,
      w.host,
      String(w.pid),
      `${w.inFlight}/${w.concurrency}`,
      w.alive ? 'yes' : 'no',
      w.lastSeenAt,
    ]),
  );
}
