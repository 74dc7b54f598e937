import {
  ConfigurableModuleBuilder,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { OUTBOX_STORE } from '@tasksys/messaging';
import { MetricsService } from '@tasksys/platform';
import { dataSourceOptions } from './data-source.options';
import type { DatabaseConfig } from './database.config';
import { runMigrations } from './migrate';
import { PgOutboxStore } from './outbox/pg-outbox.store';
import { TaskStateMachine, TRANSITION_OBSERVER } from './task-state-machine';
import { TaskTransitionMetrics } from './task-transition.metrics';
import { DATABASE_CONFIG, InjectDatabaseConfig } from './tasks.constants';

const definition = new ConfigurableModuleBuilder<DatabaseConfig>({
  optionsInjectionToken: DATABASE_CONFIG,
})
  .setClassMethodName('forRoot')
  .setExtras({}, (dynamicModule) => ({ ...dynamicModule, global: true }))
  .build();

/** `TasksModule.forRootAsync(...)`: the DatabaseConfig from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type TasksModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/** Runs pending migrations at start-up unless DATABASE_MIGRATE is off. */
@Injectable()
class MigrateOnStart implements OnModuleInit {
  private readonly logger = new Logger('Migrations');
  constructor(
    private readonly db: DataSource,
    @InjectDatabaseConfig() private readonly config: DatabaseConfig,
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

/** The task store: the TypeORM data source, migrations, the state machine and the outbox port. Global. */
@Module({
  providers: [
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
})
export class TasksModule extends definition.ConfigurableModuleClass {}
