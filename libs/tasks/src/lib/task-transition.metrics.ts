import type { Counter } from 'prom-client';
import type { MetricsService } from '@tasksys/platform';
import type { Task } from './entities';
import type { TransitionObserver } from './task-state-machine';
import type { TaskStatus } from './task-status';

/** @internal `tasksys_task_transitions_total{from,to}`: every transition this process applied. */
export class TaskTransitionMetrics implements TransitionObserver {
  private readonly transitions: Counter<'from' | 'to'>;

  constructor(metrics: MetricsService) {
    this.transitions = metrics.counter({
      name: 'tasksys_task_transitions_total',
      help: 'Task state transitions applied by this process',
      labelNames: ['from', 'to'] as const,
    });
  }

  transitioned(from: TaskStatus | null, to: TaskStatus, _task: Task): void {
    this.transitions.inc({ from: from ?? 'none', to });
  }
}
