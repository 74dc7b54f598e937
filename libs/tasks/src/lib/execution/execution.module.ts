import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BUILTIN_TASK_TYPES, type TaskTypesConfig, TaskTypeRegistry } from '../task-types';
import { AckRule } from './ack-rule';
import { DatabaseRetry } from './database-retry';
import { EXECUTION_OPTIONS, WORKER_CONFIG } from './execution.constants';
import { ExecutionMetrics } from './execution.metrics';
import { HandlerRunner } from './handler-runner';
import { LeaseKeeper } from './lease-keeper';
import { TaskExecutor } from './task-executor';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskPromoter } from './task-promoter.service';
import { TaskSweeper } from './task-sweeper.service';
import { WorkIntake } from './work-intake';
import { WorkerRegistry } from './worker-registry.service';
import type { WorkerConfig } from './worker.config';

/** What ExecutionModule needs: the worker's settings and the task-type settings it runs under. */
export interface ExecutionModuleOptions {
  worker: WorkerConfig;
  taskTypes: TaskTypesConfig;
}

const definition = new ConfigurableModuleBuilder<ExecutionModuleOptions>({
  optionsInjectionToken: EXECUTION_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras({}, (dynamicModule) => ({ ...dynamicModule, global: true }))
  .build();

/** `ExecutionModule.forRootAsync(...)`: the options from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type ExecutionModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/** Running tasks: the executor (the ack rule), handler discovery, fleet registration, the sweeper and the promoter. Global. */
@Module({
  imports: [DiscoveryModule],
  providers: [
    { provide: WORKER_CONFIG, inject: [EXECUTION_OPTIONS], useFactory: (o: ExecutionModuleOptions) => o.worker },
    {
      provide: TaskTypeRegistry,
      inject: [EXECUTION_OPTIONS],
      useFactory: (o: ExecutionModuleOptions) => new TaskTypeRegistry(BUILTIN_TASK_TYPES, o.taskTypes),
    },
    TaskHandlerRegistry,
    ExecutionMetrics,
    DatabaseRetry,
    LeaseKeeper,
    HandlerRunner,
    AckRule,
    TaskExecutor,
    WorkIntake,
    WorkerRegistry,
    TaskSweeper,
    TaskPromoter,
  ],
  exports: [
    WorkIntake,
    WORKER_CONFIG,
    TaskTypeRegistry,
    TaskExecutor,
    TaskHandlerRegistry,
    WorkerRegistry,
    TaskSweeper,
    TaskPromoter,
  ],
})
export class ExecutionModule extends definition.ConfigurableModuleClass {}
