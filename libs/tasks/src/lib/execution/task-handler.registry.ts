import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { HandlesTask, type TaskHandler } from './task-handler';

/** @internal Finds every provider decorated with `@HandlesTask(type)` at start-up. */
@Injectable()
export class TaskHandlerRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, TaskHandler>();

  constructor(private readonly discovery: DiscoveryService) {}

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
}
