import { type DynamicModule, Inject, Injectable, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { OUTBOX_STORE } from '@tasksys/messaging';
import { DataSource } from 'typeorm';
import type { DatabaseConfig } from './database.config';
import { dataSourceOptions } from './data-source.options';
import { runMigrations } from './migrate';
import { PgOutboxStore } from './outbox/pg-outbox.store';
import { TaskStateMachine, TRANSITION_OBSERVER } from './task-state-machine';
import { TaskTransitionMetrics } from './task-transition.metrics';
import { MetricsService } from '@tasksys/platform';
import { DATABASE_CONFIG } from './tasks.constants';

export interface TasksModuleAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: never[];
  useFactory: (...args: never[]) => DatabaseConfig | Promise<DatabaseConfig>;
}

/** Runs pending migrations at start-up unless DATABASE_MIGRATE is off. */
@Injectable()
class MigrateOnStart implements OnModuleInit {
  private readonly logger = new Logger('Migrations');
  constructor(
    private readonly db: DataSource,
    @Inject(DATABASE_CONFIG) private readonly config: DatabaseConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.DATABASE_MIGRATE) return;
    const ran = await runMigrations(this.db, this.config.DATABASE_SCHEMA);
    if (ran.length > 0) this.logger.log(`applied ${ran.join(', ')}`);
  }
}

/** Closes the pool after everything that uses it has shut down. */
@Injectable()
class CloseDataSourceOnShutdown implements OnApplicationShutdown {
  constructor(private readonly db: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.db.isInitialized) await this.db.destroy();
  }
}

/** The task store: the TypeORM data source, migrations, the state machine and the outbox port. */
@Module({})
export class TasksModule {
  static forRootAsync(options: TasksModuleAsyncOptions): DynamicModule {
    return {
      module: TasksModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        { provide: DATABASE_CONFIG, inject: options.inject ?? [], useFactory: options.useFactory },
        {
          provide: DataSource,
          inject: [DATABASE_CONFIG],
          useFactory: (config: DatabaseConfig) => new DataSource(dataSourceOptions(config)).initialize(),
        },
        {
          provide: TRANSITION_OBSERVER,
          inject: [{ token: MetricsService, optional: true }],
          useFactory: (metrics?: MetricsService) => (metrics ? new TaskTransitionMetrics(metrics) : null),
        },
        MigrateOnStart,
        CloseDataSourceOnShutdown,
        TaskStateMachine,
        PgOutboxStore,
        { provide: OUTBOX_STORE, useExisting: PgOutboxStore },
      ],
      exports: [DATABASE_CONFIG, DataSource, TaskStateMachine, PgOutboxStore, OUTBOX_STORE],
    };
  }
}
