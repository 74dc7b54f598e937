/**
 * The checks run over every task a scenario submitted, against the database and its event log.
 *
 * Per task, the event log is cut into cycles at each manual retry (an event from a terminal status
 * back to `queued`). In each cycle there must be exactly one terminal event and it must be the
 * cycle's last event; the row's status must equal the last terminal event's `to_status`; a
 * succeeded task must have a result; after the settle deadline no task may be non-terminal (lost).
 */
import type { Pool } from 'pg';
import { waitFor } from '@tasksys/testing';

export const TERMINAL = ['succeeded', 'failed', 'cancelled'];

export interface TaskCheck {
  submitted: number;
  terminal: number;
  lost: number;
  committedTwice: number;
  repeatedExecutions: number;
  byStatus: Record<string, number>;
  violations: string[];
  checks: string[];
}

interface Row {
  id: string;
  status: string;
  result: unknown;
}
interface EventRow {
  task_id: string;
  from_status: string | null;
  to_status: string;
  attempt: number;
  actor: string;
}

export async function countNonTerminal(db: Pool, ids: string[]): Promise<number> {
  const r = await db.query(
    `SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status NOT IN ('succeeded','failed','cancelled')`,
    [ids],
  );
  return r.rows[0].n as number;
}

/** Waits until every task is terminal; returns the ms it took, or null at the deadline. */
export async function settle(db: Pool, ids: string[], timeoutMs: number): Promise<number | null> {
  const t0 = Date.now();
  try {
    await waitFor(`${ids.length} tasks terminal`, async () => (await countNonTerminal(db, ids)) === 0, timeoutMs, 250);
    return Date.now() - t0;
  } catch {
    return null;
  }
}

export async function checkTasks(db: Pool, ids: string[]): Promise<TaskCheck> {
  const violations: string[] = [];
  const tasks = (await db.query(`SELECT id, status, result FROM tasks WHERE id = ANY($1::uuid[])`, [ids]))
    .rows as Row[];
  const events = (
    await db.query(
      `SELECT task_id, from_status, to_status, attempt, actor FROM task_events WHERE task_id = ANY($1::uuid[]) ORDER BY id`,
      [ids],
    )
  ).rows as EventRow[];
  const byTask = new Map<string, EventRow[]>();
  for (const e of events) (byTask.get(e.task_id) ?? byTask.set(e.task_id, []).get(e.task_id))?.push(e);
  const rowById = new Map(tasks.map((t) => [t.id, t]));

  let terminal = 0,
    lost = 0,
    committedTwice = 0,
    repeated = 0;
  const byStatus: Record<string, number> = {};
  const v = (id: string, m: string) => violations.length < 50 && violations.push(`${id}: ${m}`);

  for (const id of ids) {
    const row = rowById.get(id);
    if (!row) {
      lost++;
      v(id, 'accepted by the api (2xx) but no row in tasks');
      continue;
    }
    byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    const evs = byTask.get(id) ?? [];
    if (TERMINAL.includes(row.status)) terminal++;
    else {
      lost++;
      v(id, `still ${row.status} after the settle deadline`);
    }
    // cycles split at manual retries
    const cycles: EventRow[][] = [[]];
    for (const e of evs) {
      if (e.from_status && TERMINAL.includes(e.from_status) && e.to_status === 'queued') cycles.push([]);
      cycles[cycles.length - 1].push(e);
    }
    let twice = false;
    cycles.forEach((c, i) => {
      const terms = c.filter((e) => TERMINAL.includes(e.to_status));
      if (terms.length > 1) {
        twice = true;
        v(
          id,
          `cycle ${i}: ${terms.length} terminal events (${terms.map((e) => `${e.to_status}@${e.attempt} by ${e.actor}`).join(', ')})`,
        );
      }
      const lastTerm = c.findIndex((e) => TERMINAL.includes(e.to_status));
      if (lastTerm >= 0 && c.length - 1 > c.lastIndexOf(terms[terms.length - 1])) {
        const after = c.slice(c.lastIndexOf(terms[terms.length - 1]) + 1);
        v(
          id,
          `cycle ${i}: events after the terminal one: ${after.map((e) => `${e.from_status}->${e.to_status}@${e.attempt}`).join(', ')}`,
        );
      }
      const cancelledAt = c.findIndex((e) => e.to_status === 'cancelled');
      if (cancelledAt >= 0 && c.slice(cancelledAt + 1).some((e) => e.to_status === 'succeeded'))
        v(id, `cycle ${i}: succeeded after cancelled`);
    });
    if (twice) committedTwice++;
    const lastTerminal = [...evs].reverse().find((e) => TERMINAL.includes(e.to_status));
    if (TERMINAL.includes(row.status) && lastTerminal?.to_status !== row.status)
      v(id, `row status ${row.status} but last terminal event ${lastTerminal?.to_status ?? 'none'}`);
    if (
      TERMINAL.includes(row.status) &&
      cycles[cycles.length - 1].filter((e) => TERMINAL.includes(e.to_status)).length === 0
    )
      v(id, `row is ${row.status} but its last cycle has no terminal event`);
    if (row.status === 'succeeded' && (row.result === null || row.result === undefined))
      v(id, 'succeeded without a result');
    const runs = evs.filter((e) => e.to_status === 'running').length;
    if (runs > 1) repeated++;
  }

  return {
    submitted: ids.length,
    terminal,
    lost,
    committedTwice,
    repeatedExecutions: repeated,
    byStatus,
    violations,
    checks: [
      'one terminal event per task',
      'row status = last terminal event',
      'nothing after terminal',
      'no success after cancel',
      'succeeded has result',
      'none non-terminal after settle',
    ],
  };
}

/** For a failed settle: what the stuck tasks look like (status, lease, last events). */
export async function diagnoseStuck(db: Pool, ids: string[], limit = 8): Promise<string[]> {
  const rows = (
    await db.query(
      `SELECT t.id, t.status, t.attempt, t.lease_owner,
              round(extract(epoch FROM (t.lease_expires_at - now())))::int AS lease_left_s,
              round(extract(epoch FROM (now() - t.updated_at)))::int AS idle_s,
              (SELECT string_agg(coalesce(e.from_status,'-') || '->' || e.to_status || '@' || e.attempt || ' by ' || e.actor, ', ' ORDER BY e.id)
                 FROM task_events e WHERE e.task_id = t.id) AS events
         FROM tasks t WHERE t.id = ANY($1::uuid[]) AND t.status NOT IN ('succeeded','failed','cancelled')
        ORDER BY t.updated_at LIMIT $2`,
      [ids, limit],
    )
  ).rows;
  const outbox = (await db.query(`SELECT count(*)::int AS n FROM outbox`)).rows[0].n;
  return [
    `outbox rows: ${outbox}`,
    ...rows.map(
      (r) =>
        `${r.id} ${r.status} attempt ${r.attempt} lease ${r.lease_owner ?? '-'} (${r.lease_left_s ?? '-'} s left), idle ${r.idle_s} s; events: ${r.events}`,
    ),
  ];
}
