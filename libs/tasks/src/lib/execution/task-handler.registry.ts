import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { TaskTypeRegistry } from '../task-types';
import { HandlesTask, type TaskHandler } from './task-handler';

/** @internal Finds every provider decorated with `@HandlesTask(type)` at start-up. */
@Injectable()
export class TaskHandlerRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, TaskHandler>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly typeSettings: TaskTypeRegistry,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: HandlesTask.KEY })) {
      const type = this.discovery.getMetadataByDecorator(HandlesTask, wrapper);
      if (!type || !wrapper.instance) continue;
      if (this.handlers.has(type)) throw new Error(`two handlers for task type ${type}`);
      this.handlers.set(type, wrapper.instance as TaskHandler);
    }
  }

  get(type: string): TaskHandler | undefined {
    return this.handlers.get(type);
  }

  types(): string[] {
    return [...this.handlers.keys()];
  }

  /** Why this worker cannot run tasks of `type` (no handler here, a setting it needs is missing), or null when it can. */
  whyNotRunnable(type: string): string | null {
    return this.handlers.has(type) ? this.typeSettings.unavailable(type) : `this worker has no handler for ${type}`;
  }
}
