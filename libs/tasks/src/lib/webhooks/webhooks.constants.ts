import { Inject } from '@nestjs/common';
import type { Task } from '../entities';
import type { WebhooksConfig } from './webhooks.config';

export interface WebhooksModuleOptions {
  config: WebhooksConfig;
  /**
   * The body of a task's webhook: the task as the api shows it (GET /v1/tasks/:id). The task is the
   * row as its terminal transition left it, so the bytes are the same on every attempt.
   */
  render: (task: Task) => unknown;
  /** Run the dispatcher in this process (the api: yes). */
  dispatch?: boolean;
}

/** @internal */
export const WEBHOOKS_OPTIONS = Symbol('WEBHOOKS_OPTIONS');
/** @internal */
export const InjectWebhooksOptions = () => Inject(WEBHOOKS_OPTIONS);
