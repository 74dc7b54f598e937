import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import type { RetentionConfig } from './retention.config';
import { RETENTION_CONFIG, TaskRetention } from './task-retention.service';

const definition = new ConfigurableModuleBuilder<RetentionConfig>({ optionsInjectionToken: RETENTION_CONFIG })
  .setClassMethodName('forRoot')
  .build();

/** `TaskRetentionModule.forRootAsync(...)`: the RetentionConfig from a factory (`inject`, `useFactory`). */
export type TaskRetentionModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * Retention of finished tasks: a timer in every process that imports it, one round at a time
 * across them (TaskRetention). Needs TasksModule (the data source and the database config).
 */
@Module({ providers: [TaskRetention], exports: [TaskRetention] })
export class TaskRetentionModule extends definition.ConfigurableModuleClass {}
