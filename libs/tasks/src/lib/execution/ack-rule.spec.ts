import type { ConsumeMessage } from 'amqplib';
import type { Delivery, TaskMessage, TaskPublisher, Topology } from '@tasksys/messaging';
import type { Task } from '../entities';
import type { TaskStateMachine, TransitionResult } from '../task-state-machine';
import type { TaskStatus } from '../task-status';
import { AckRule } from './ack-rule';
import { DatabaseRetry } from './database-retry';
import type { ExecutionMetrics } from './execution.metrics';
import type { WorkerConfig } from './worker.config';

/**
 * Every branch of the ack rule, with a fake state machine, publisher and delivery (the real-service
 * tests of the executor stay as they are). What matters in each: how the delivery was settled, and
 * which successor message (if any) was published before it.
 */
const TASK_ID = '0b9e7c1e-3f0a-4a55-9a8d-2f2a3c1d0e01';
const MESSAGE: TaskMessage = { v: 1, taskId: TASK_ID, type: 'demo.sleep' };

type Settled = 'ack' | 'reject' | 'requeue';

function fakeDelivery(content: Buffer = Buffer.from(JSON.stringify(MESSAGE))): Delivery & { settled: Settled[] } {
  const settled: Settled[] = [];
  const message = {
    content,
    fields: { routingKey: 'demo.sleep', redelivered: false },
    // A priority-7 task: every successor keeps it.
    properties: {
      headers: { 'x-task-attempt': 2, traceparent: '00-abc-def-01' },
      messageId: 'm1',
      correlationId: TASK_ID,
      priority: 7,
    },
  } as unknown as ConsumeMessage;
  return {
    message,
    settled,
    ack: () => void settled.push('ack'),
    reject: () => void settled.push('reject'),
    requeue: () => void settled.push('requeue'),
  };
}

function task(status: TaskStatus, extra: Partial<Task> = {}): Task {
  return {
    id: TASK_ID,
    type: 'demo.sleep',
    status,
    attempt: 1,
    attemptBase: 0,
    maxAttempts: 3,
    leaseOwner: status === 'running' ? 'elsewhere' : null,
    leaseExpiresAt: status === 'running' ? new Date(Date.now() + 10_000) : null,
    runAfter: null,
    ...extra,
  } as Task;
}

interface Published {
  kind: 'retry' | 'dead' | 'task';
  delayMs?: number;
  attempt?: number;
  code?: string;
  priority?: number;
}

function setup(
  opts: {
    queueType?: 'classic' | 'quorum';
    publishFails?: boolean;
    row?: Task | null;
    abandon?: TransitionResult;
  } = {},
) {
  const published: Published[] = [];
  const fail = () => {
    if (opts.publishFails) throw new Error('nacked');
  };
  const publisher = {
    publishRetry: async (_m: TaskMessage, o: { attempt: number; delayMs: number; priority?: number }) => {
      fail();
      published.push({ kind: 'retry', delayMs: o.delayMs, attempt: o.attempt, priority: o.priority });
      return { label: '1s', delayMs: 1000, name: 'x' };
    },
    publishDeadLetter: async (_c: Buffer, _p: unknown, r: { code: string }) => {
      fail();
      published.push({ kind: 'dead', code: r.code });
    },
    publishTask: async (_m: TaskMessage, o: { attempt: number; priority?: number }) => {
      fail();
      published.push({ kind: 'task', attempt: o.attempt, priority: o.priority });
    },
  } as unknown as TaskPublisher;
  const abandoned: string[] = [];
  const tasks = {
    find: async () => (opts.row === undefined ? task('queued') : opts.row),
    failAbandoned: async (id: string) => {
      abandoned.push(id);
      return opts.abandon ?? { applied: true, task: task('failed') };
    },
  } as unknown as TaskStateMachine;
  const counter = () => ({
    n: 0,
    inc(this: { n: number }) {
      this.n++;
    },
  });
  const metrics = {
    duplicates: counter(),
    deferrals: counter(),
    deadLetters: counter(),
    retries: counter(),
    parked: counter(),
  };
  const topology = { queueType: opts.queueType ?? 'classic' } as Topology;
  const rule = new AckRule(
    tasks,
    publisher,
    topology,
    new DatabaseRetry(),
    metrics as unknown as ExecutionMetrics,
    {
      WORKER_ID: 'me',
    } as WorkerConfig,
  );
  rule.pauses.afterFailedDeferral = 0;
  rule.pauses.afterUnexpectedError = 0;
  return { rule, published, metrics, abandoned };
}

describe('the ack rule', () => {
  describe('(a) terminal', () => {
    it('acks a delivery whose task is terminal', () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      rule.terminal(d);
      expect([d.settled, published]).toEqual([['ack'], []]);
    });
  });

  describe('(b) successor confirmed', () => {
    it('acks a retry only after the retry tier confirmed it', async () => {
      const { rule, published, metrics } = setup();
      const d = fakeDelivery();
      expect(await rule.retried(d, MESSAGE, 2, 1000)).toBe('1s');
      expect([d.settled, published, metrics.retries.n]).toEqual([
        ['ack'],
        [{ kind: 'retry', delayMs: 1000, attempt: 2, priority: 7 }],
        1,
      ]);
    });

    it('requeues when the retry was not confirmed (the task waits in retrying)', async () => {
      const { rule } = setup({ publishFails: true });
      const d = fakeDelivery();
      expect(await rule.retried(d, MESSAGE, 2, 1000)).toBeNull();
      expect(d.settled).toEqual(['requeue']);
    });

    it('defers: a confirmed copy, then ack', async () => {
      const { rule, published, metrics } = setup();
      const d = fakeDelivery();
      await rule.defer(d, MESSAGE, 1, 2500);
      expect([d.settled, published, metrics.deferrals.n]).toEqual([
        ['ack'],
        [{ kind: 'retry', delayMs: 2500, attempt: 1, priority: 7 }],
        1,
      ]);
    });

    it('requeues a deferral the broker refused', async () => {
      const { rule } = setup({ publishFails: true });
      const d = fakeDelivery();
      await rule.defer(d, MESSAGE, 1, 2500);
      expect(d.settled).toEqual(['requeue']);
    });
  });

  describe('(c) parked in the database, which owns its next message', () => {
    const held = (status: 'queued' | 'retrying') =>
      task(status, { heldSince: new Date(), heldReason: 'owner acme is at maxRunning 2' });

    it('acks a task held back by its owner’s maxRunning with no successor: a freed slot writes its message', () => {
      const { rule, published, metrics } = setup();
      const d = fakeDelivery();
      rule.parked(d, held('queued'));
      expect([d.settled, published, metrics.parked.n]).toEqual([['ack'], [], 1]);
    });

    it('acks, without a deferral, another copy of a held task (queued or due retrying): no loop through the broker', async () => {
      for (const status of ['queued', 'retrying'] as const) {
        const { rule, published, metrics } = setup({ row: held(status) });
        const d = fakeDelivery();
        await rule.unowned(d, MESSAGE);
        expect([status, d.settled, published, metrics.deferrals.n, metrics.parked.n]).toEqual([
          status,
          ['ack'],
          [],
          0,
          1,
        ]);
      }
    });

    it('still defers a queued task that is not held (it must not lose its only message)', async () => {
      const { rule, published } = setup({ row: task('queued') });
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE);
      expect([d.settled, published.map((p) => p.kind)]).toEqual([['ack'], ['retry']]);
    });
  });

  describe('dead letters', () => {
    it('publishes the dead letter, then acks', async () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      await rule.deadLetter(d, { code: 'TASK.MAX_ATTEMPTS', message: 'boom', retryable: false }, true);
      expect([d.settled, published]).toEqual([['ack'], [{ kind: 'dead', code: 'TASK.MAX_ATTEMPTS' }]]);
    });

    it('acks anyway when the dead letter was refused but the task is terminal', async () => {
      const { rule } = setup({ publishFails: true });
      const d = fakeDelivery();
      await rule.deadLetter(d, { code: 'TASK.MAX_ATTEMPTS', message: 'boom', retryable: false }, true);
      expect(d.settled).toEqual(['ack']);
    });

    it('rejects (to the queue’s own dead-letter exchange) when refused and the task is not terminal', async () => {
      const { rule } = setup({ publishFails: true });
      const d = fakeDelivery();
      await rule.deadLetter(d, { code: 'MESSAGE.NOT_JSON', message: 'garbage', retryable: false });
      expect(d.settled).toEqual(['reject']);
    });
  });

  describe('hand-back', () => {
    it('requeues on classic queues', async () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      await rule.handBack(d, MESSAGE);
      expect([d.settled, published]).toEqual([['requeue'], []]);
    });

    it('publishes a fresh copy and acks on quorum queues (a requeue would count toward x-delivery-limit)', async () => {
      const { rule, published } = setup({ queueType: 'quorum' });
      const d = fakeDelivery();
      await rule.handBack(d, MESSAGE);
      expect([d.settled, published]).toEqual([['ack'], [{ kind: 'task', attempt: 2, priority: 7 }]]);
    });

    it('falls back to a requeue on quorum queues when the copy was refused', async () => {
      const { rule } = setup({ queueType: 'quorum', publishFails: true });
      const d = fakeDelivery();
      await rule.handBack(d, MESSAGE);
      expect(d.settled).toEqual(['requeue']);
    });
  });

  describe('a task this worker does not run', () => {
    it('dead-letters a message for a task that does not exist', async () => {
      const { rule, published } = setup({ row: null });
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE);
      expect([d.settled, published]).toEqual([['ack'], [{ kind: 'dead', code: 'TASK.NOT_FOUND' }]]);
    });

    it.each(['succeeded', 'failed', 'cancelled'] as const)(
      'acks a duplicate of a %s task and counts it',
      async (status) => {
        const { rule, published, metrics } = setup();
        const d = fakeDelivery();
        await rule.unowned(d, MESSAGE, task(status));
        expect([d.settled, published, metrics.duplicates.n]).toEqual([['ack'], [], 1]);
      },
    );

    it('acks a message of a task not started yet (its start queues its own)', async () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('new'));
      expect([d.settled, published]).toEqual([['ack'], []]);
    });

    it('defers a task running under a live lease elsewhere until about when the lease ends', async () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('running', { leaseExpiresAt: new Date(Date.now() + 8000) }));
      expect(d.settled).toEqual(['ack']);
      expect(published).toHaveLength(1);
      expect(published[0].delayMs).toBeGreaterThan(7000);
      expect(published[0].delayMs).toBeLessThanOrEqual(8000);
    });

    it('defers an early copy of a retry until it is due, never sooner', async () => {
      const { rule, published } = setup();
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('retrying', { runAfter: new Date(Date.now() + 5000) }));
      expect(d.settled).toEqual(['ack']);
      expect(published[0].delayMs).toBeGreaterThan(4000);
    });

    it('fails a task whose workers died on every attempt, then dead-letters it', async () => {
      const { rule, published, abandoned } = setup();
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('running', { attempt: 3, leaseExpiresAt: new Date(Date.now() - 1000) }));
      expect(abandoned).toEqual([TASK_ID]);
      expect([d.settled, published]).toEqual([['ack'], [{ kind: 'dead', code: 'TASK.ABANDONED' }]]);
    });

    it('defers (not loops) when the database refuses the abandonment (its clock says the lease is live)', async () => {
      const { rule, published } = setup({ abandon: { applied: false, task: task('running') } });
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('running', { attempt: 3, leaseExpiresAt: new Date(Date.now() - 1000) }));
      expect([d.settled, published]).toEqual([['ack'], [{ kind: 'retry', delayMs: 0, attempt: 3, priority: 7 }]]);
    });

    it('acks when the abandonment found the task terminal meanwhile', async () => {
      const { rule, published } = setup({ abandon: { applied: false, task: task('succeeded') } });
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE, task('running', { attempt: 3, leaseExpiresAt: new Date(Date.now() - 1000) }));
      expect([d.settled, published]).toEqual([['ack'], []]);
    });

    it('reads the row when the caller has none', async () => {
      const { rule } = setup({ row: task('cancelled') });
      const d = fakeDelivery();
      await rule.unowned(d, MESSAGE);
      expect(d.settled).toEqual(['ack']);
    });
  });

  describe('unexpected errors (bugs)', () => {
    it('requeues twice, then dead-letters the message with the error', async () => {
      const { rule, published } = setup();
      const outcomes: Settled[][] = [];
      for (let i = 0; i < 3; i++) {
        const d = fakeDelivery();
        await rule.unexpectedError(d, new TypeError('x is undefined'));
        outcomes.push(d.settled);
      }
      expect(outcomes).toEqual([['requeue'], ['requeue'], ['ack']]);
      expect(published).toEqual([{ kind: 'dead', code: 'WORKER.INTERNAL_ERROR' }]);
    });
  });
});
