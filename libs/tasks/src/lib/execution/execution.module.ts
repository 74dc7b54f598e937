import { type DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BUILTIN_TASK_TYPES, type TaskTypesConfig, TaskTypeRegistry } from '../task-types';
import { WORKER_CONFIG } from './execution.constants';
import { AckRule } from './ack-rule';
import { DatabaseRetry } from './database-retry';
import { ExecutionMetrics } from './execution.metrics';
import { HandlerRunner } from './handler-runner';
import { LeaseKeeper } from './lease-keeper';
import { TaskExecutor } from './task-executor';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskSweeper } from './task-sweeper.service';
import type { WorkerConfig } from './worker.config';
import { WorkerRegistry } from './worker-registry.service';

export interface ExecutionModuleOptions {
  imports?: DynamicModule['imports'];
  inject?: never[];
  useFactory: (...args: never[]) => { worker: WorkerConfig; taskTypes: TaskTypesConfig };
}

/** Running tasks: the executor (the ack rule), handler discovery, fleet registration and the sweeper. */
@Module({})
export class ExecutionModule {
  static forRootAsync(options: ExecutionModuleOptions): DynamicModule {
    const OPTIONS = Symbol('EXECUTION_OPTIONS');
    return {
      module: ExecutionModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory },
        { provide: WORKER_CONFIG, inject: [OPTIONS], useFactory: (o: { worker: WorkerConfig }) => o.worker },
        {
          provide: TaskTypeRegistry,
          inject: [OPTIONS],
          useFactory: (o: { taskTypes: TaskTypesConfig }) => new TaskTypeRegistry(BUILTIN_TASK_TYPES, o.taskTypes),
        },
        TaskHandlerRegistry,
        ExecutionMetrics,
        DatabaseRetry,
        LeaseKeeper,
        HandlerRunner,
        AckRule,
        TaskExecutor,
        WorkerRegistry,
        TaskSweeper,
      ],
      exports: [WORKER_CONFIG, TaskTypeRegistry, TaskExecutor, TaskHandlerRegistry, WorkerRegistry, TaskSweeper],
    };
  }
}
