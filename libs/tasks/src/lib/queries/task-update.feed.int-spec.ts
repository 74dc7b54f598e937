import { Client } from 'pg';
import { waitFor } from '@tasksys/testing';
import { createTestDatabase, type TestDatabase } from '../../testing';
import { pgConnectionConfig } from '../data-source.options';
import { TASK_UPDATES_PAYLOAD_BUDGET } from '../migrations/1764700000000-lean-task-writes';
import { newTaskId } from '../task-id';
import { TaskStateMachine } from '../task-state-machine';
import { type TaskUpdate, TaskUpdateFeed } from './task-update.feed';

/** pg_notify refuses a payload of this many bytes or more. */
const PAYLOAD_LIMIT = 8000;
const LEASE = 30_000;
const BATCH = 200;

// Waits for notifications and builds indexes: on a loaded machine more than Jest's 5-s default.
jest.setTimeout(30_000);

describe('TaskUpdateFeed over the statement trigger (real PostgreSQL)', () => {
  let t: TestDatabase;
  let sm: TaskStateMachine;
  let feed: TaskUpdateFeed;
  /** A second listener on the same channel, to see the notifications themselves. */
  let raw: Client;
  let channel: string;
  const seen: { channel: string; payload: string }[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    sm = new TaskStateMachine(t.db);
    feed = new TaskUpdateFeed(t.config);
    await feed.onApplicationBootstrap();
    channel = `${t.config.DATABASE_SCHEMA}.task_updates`;
    raw = new Client(pgConnectionConfig(t.config));
    await raw.connect();
    raw.on('notification', (n) => seen.push({ channel: n.channel, payload: n.payload ?? '' }));
    await raw.query(`LISTEN "${channel}"`);
  });
  afterAll(async () => {
    await feed.onApplicationShutdown();
    await raw.end();
    await t.drop();
  });

  /**
   * The task_updates payloads `run` caused. Notifications reach each listener in commit order, so
   * once a marker sent after `run` has reached both the raw listener and the feed (each on its own
   * connection), so has everything `run` sent: no watcher is told of an earlier step later.
   */
  async function notificationsOf(run: () => Promise<unknown>): Promise<string[]> {
    seen.length = 0;
    await run();
    const token = newTaskId();
    let fedThrough = false;
    const sub = feed.watch(token).subscribe(() => (fedThrough = true));
    try {
      await t.db.query(`SELECT pg_notify($1, $2)`, [channel, JSON.stringify([[token, 'queued', 0, 0, null]])]);
      await waitFor(
        'the marker through the raw listener and the feed',
        () => fedThrough && seen.some((n) => n.payload.includes(token)),
      );
    } finally {
      sub.unsubscribe();
    }
    return seen.filter((n) => n.channel === channel && !n.payload.includes(token)).map((n) => n.payload);
  }

  /** Subscribes to every task of `ids`; what each watcher was told so far. */
  function watchAll(ids: string[]): { told: (id: string) => TaskUpdate[]; stop: () => void } {
    const told = new Map<string, TaskUpdate[]>(ids.map((id) => [id, []]));
    const subs = ids.map((id) =>
      feed.watch(id).subscribe((e) => {
        if (e.kind === 'update') told.get(id)?.push(e.update);
      }),
    );
    return { told: (id) => told.get(id) ?? [], stop: () => subs.forEach((s) => s.unsubscribe()) };
  }

  async function queuedTasks(n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, () => newTaskId());
    const rows = ids.map((id) => ({
      id,
      owner: 'alice',
      type: 'demo.sleep',
      payload: { ms: 1 },
      maxAttempts: 3,
      timeoutMs: 60_000,
      start: true,
      actor: 'owner:alice',
    }));
    await sm.createMany(rows);
    return ids;
  }

  /** Ids in a statement's payloads, each as often as it is listed. */
  const listed = (payloads: string[]) => payloads.flatMap((p) => (JSON.parse(p) as unknown[][]).map((e) => e[0]));
  const bytes = (payloads: string[]) => payloads.map((p) => Buffer.byteLength(p, 'utf8'));

  it(`tells every watcher of a ${BATCH}-task claim and completion, each statement in one or two notifications under the limit`, async () => {
    const ids = await queuedTasks(BATCH);
    const { told, stop } = watchAll(ids);
    try {
      const claim = await notificationsOf(() => sm.claimMany(ids, 'w1', LEASE));
      expect(claim.length).toBeGreaterThanOrEqual(1);
      expect(claim.length).toBeLessThanOrEqual(2);
      expect(Math.max(...bytes(claim))).toBeLessThan(PAYLOAD_LIMIT);
      expect(listed(claim).sort()).toEqual([...ids].sort());
      await waitFor('every watcher told of its claim', () =>
        ids.every((id) => told(id).some((u) => u.status === 'running' && u.attempt === 1)),
      );

      const succeed = await notificationsOf(() =>
        sm.succeedMany(
          ids.map((id) => ({ id, token: 1, result: { ok: true } })),
          'w1',
        ),
      );
      expect(succeed.length).toBeLessThanOrEqual(2);
      expect(Math.max(...bytes(succeed))).toBeLessThan(PAYLOAD_LIMIT);
      expect(listed(succeed).sort()).toEqual([...ids].sort());
      await waitFor('every watcher told of its completion', () =>
        ids.every((id) => told(id).some((u) => u.status === 'succeeded' && u.percent === 100)),
      );
      for (const id of ids) {
        expect(told(id)).toEqual([
          { id, status: 'running', attempt: 1, percent: 0, message: null },
          { id, status: 'succeeded', attempt: 1, percent: 100, message: null },
        ]);
      }
    } finally {
      stop();
    }
  });

  it('splits a statement whose tasks carry the longest progress messages into notifications under the limit, none lost', async () => {
    const ids = await queuedTasks(BATCH);
    await notificationsOf(() => sm.claimMany(ids, 'w1', LEASE));
    // 600 characters, cut to 500 by the trigger: control characters (6 bytes each as JSON) and 4-byte ones.
    const message = '\u0001'.repeat(250) + '😀'.repeat(350);
    const cut = '\u0001'.repeat(250) + '😀'.repeat(250);
    await notificationsOf(async () => {
      for (const id of ids) expect(await sm.progress(id, 1, 'w1', 50, message, LEASE)).toBe(true);
    });
    const { told, stop } = watchAll(ids);
    try {
      const succeed = await notificationsOf(() =>
        sm.succeedMany(
          ids.map((id) => ({ id, token: 1, result: null })),
          'w1',
        ),
      );
      // About 2,600 bytes a task: two or three to a notification, never one past the limit.
      expect(succeed.length).toBeGreaterThan(BATCH / 3 - 1);
      expect(succeed.length).toBeLessThan(BATCH);
      expect(Math.max(...bytes(succeed))).toBeLessThanOrEqual(TASK_UPDATES_PAYLOAD_BUDGET);
      expect(listed(succeed).sort()).toEqual([...ids].sort());
      await waitFor('every watcher told of its completion', () =>
        ids.every((id) => told(id).some((u) => u.status === 'succeeded')),
      );
      for (const id of ids)
        expect(told(id)).toEqual([{ id, status: 'succeeded', attempt: 1, percent: 100, message: cut }]);
    } finally {
      stop();
    }
  });

  it('sends one notification for a progress report, and none for a statement that changes no status or progress', async () => {
    const ids = await queuedTasks(20);
    await notificationsOf(() => sm.claimMany(ids, 'w1', LEASE));
    const { told, stop } = watchAll(ids);
    try {
      const heartbeats = await notificationsOf(() =>
        sm.heartbeatMany(
          ids.map((id) => ({ id, token: 1 })),
          'w1',
          LEASE,
        ),
      );
      expect(heartbeats).toEqual([]);
      const progress = await notificationsOf(() => sm.progress(ids[0], 1, 'w1', 40, 'step 2 of 5', LEASE));
      expect(progress.map((p) => JSON.parse(p))).toEqual([[[ids[0], 'running', 1, 40, 'step 2 of 5']]]);
      await waitFor('the watcher told of the progress', () => told(ids[0]).length === 1);
      expect(told(ids[0])).toEqual([
        { id: ids[0], status: 'running', attempt: 1, percent: 40, message: 'step 2 of 5' },
      ]);
      expect(ids.slice(1).every((id) => told(id).length === 0)).toBe(true);
    } finally {
      stop();
    }
  });

  it("still reads the previous trigger's one-row payload (after a rollback of the migration)", async () => {
    const [id] = await queuedTasks(1);
    const { told, stop } = watchAll([id]);
    try {
      const old = { id, status: 'running', attempt: 2, percent: 10, message: 'old' };
      await t.db.query(`SELECT pg_notify($1, $2)`, [channel, JSON.stringify(old)]);
      await waitFor('the watcher told', () => told(id).length === 1);
      expect(told(id)).toEqual([old]);
    } finally {
      stop();
    }
  });
});
