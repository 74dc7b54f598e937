import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { DataSource } from 'typeorm';
import { BrokerStatus, MessagingModule, OutboxRelayModule } from '@tasksys/messaging';
import {
  fromConfig,
  HealthModule,
  loggingConfigSchema,
  LoggingModule,
  MetricsModule,
  TracingModule,
  validateEnv,
} from '@tasksys/platform';
import {
  databaseConfigSchema,
  ExecutionModule,
  handledType,
  resolveServedTypes,
  retentionConfigSchema,
  SchedulesModule,
  schedulesConfigSchema,
  TaskExecutor,
  TaskRetentionModule,
  TasksModule,
  WorkerRegistry,
} from '@tasksys/tasks';
import { DemoCrashHandler } from './handlers/demo-crash.handler';
import { DemoSleepHandler } from './handlers/demo-sleep.handler';
import { SqlQueryHandler } from './handlers/sql-query.handler';
import { workerAppConfigSchema } from './worker.config';
import { TASK_TYPES_CONFIG } from './worker.constants';

/** The task types this worker can run; WORKER_TASK_TYPES chooses among them. */
const HANDLERS = [DemoSleepHandler, DemoCrashHandler, SqlQueryHandler];
const HANDLED_TYPES = HANDLERS.map(handledType);

/** Probes and scrapes: no log line per request. */
const QUIET_PATHS = ['/health', '/metrics'];

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, validate: validateEnv(workerAppConfigSchema) }),
    TracingModule, // flushes traces on shutdown (started, if configured, by main.ts)
    // Every lib module's options are its own variables of the validated environment (fromConfig).
    TasksModule.forRootAsync(fromConfig(databaseConfigSchema)),
    // The worker declares, binds and consumes the queues of the types it serves (the api none).
    MessagingModule.forRootAsync(
      fromConfig(workerAppConfigSchema, (c) => ({ ...c, serves: resolveServedTypes(c, HANDLED_TYPES) })),
    ),
    // Workers relay too: the sweeper's re-enqueues and cancels go out even with no api running.
    // Polling only: the api's relay is woken by NOTIFY; waking every worker too only cost empty rounds.
    OutboxRelayModule.register({ listen: false }),
    ExecutionModule.forRootAsync(fromConfig(workerAppConfigSchema, (c) => ({ worker: c, taskTypes: c }))),
    // Cron schedules fire here too, so they keep firing with no api running (one task per fire time regardless).
    SchedulesModule.forRootAsync(fromConfig(schedulesConfigSchema)),
    // Retention of finished tasks: every worker has the timer, one round at a time runs across them.
    TaskRetentionModule.forRootAsync(fromConfig(retentionConfigSchema)),
    LoggingModule.forRootAsync(
      fromConfig(loggingConfigSchema, (c) => ({ level: c.LOG_LEVEL, quietPaths: QUIET_PATHS, requestContext: false })),
    ),
    MetricsModule,
    HealthModule.forRootAsync({
      inject: [DataSource, BrokerStatus, WorkerRegistry, TaskExecutor],
      useFactory: (db: DataSource, broker: BrokerStatus, registry: WorkerRegistry, executor: TaskExecutor) => ({
        checks: [
          { name: 'database', check: async () => void (await db.query('SELECT 1')) },
          { name: 'broker', check: () => broker.isReady() },
          { name: 'consumer', check: () => executor.isConsuming() && registry.healthy() },
        ],
      }),
    }),
  ],
  providers: [{ provide: TASK_TYPES_CONFIG, ...fromConfig(workerAppConfigSchema) }, ...HANDLERS],
})
export class WorkerModule {}
