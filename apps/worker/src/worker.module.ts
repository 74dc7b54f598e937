import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { BrokerStatus, MessagingModule, OutboxRelayModule } from '@tasksys/messaging';
import { configFrom, HealthModule, LoggingModule, MetricsModule, type ReadinessCheck, validateEnv } from '@tasksys/platform';
import { ExecutionModule, handledType, resolveServedTypes, TaskExecutor, TasksModule, WorkerRegistry } from '@tasksys/tasks';
import { DataSource } from 'typeorm';
import { DemoCrashHandler } from './handlers/demo-crash.handler';
import { DemoSleepHandler } from './handlers/demo-sleep.handler';
import { SqlQueryHandler } from './handlers/sql-query.handler';
import { workerAppConfigSchema, type WorkerAppConfig } from './worker.config';
import { TASK_TYPES_CONFIG } from './worker.constants';

const config = (c: ConfigService): WorkerAppConfig => configFrom(workerAppConfigSchema, c);

/** The task types this worker can run; WORKER_TASK_TYPES chooses among them. */
const HANDLERS = [DemoSleepHandler, DemoCrashHandler, SqlQueryHandler];
const HANDLED_TYPES = HANDLERS.map(handledType);

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, validate: validateEnv(workerAppConfigSchema) }),
    TasksModule.forRootAsync({ inject: [ConfigService] as never[], useFactory: config }),
    // The worker declares, binds and consumes the queues of the types it serves (the api none).
    MessagingModule.forRootAsync({
      inject: [ConfigService] as never[],
      useFactory: (c: ConfigService) => ({ ...config(c), serves: resolveServedTypes(config(c), HANDLED_TYPES) }),
    }),
    // Workers relay too: the sweeper's re-enqueues and cancels go out even with no api running.
    // Polling only: the api's relay is woken by NOTIFY; waking every worker too only cost empty rounds.
    OutboxRelayModule.register({ listen: false }),
    ExecutionModule.forRootAsync({
      inject: [ConfigService] as never[],
      useFactory: (c: ConfigService) => ({ worker: config(c), taskTypes: config(c) }),
    }),
    LoggingModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (c: ConfigService) => ({ level: config(c).LOG_LEVEL, quietPaths: ['/health', '/metrics'] }),
    }),
    MetricsModule,
    HealthModule.forRootAsync({
      inject: [DataSource, BrokerStatus, WorkerRegistry, TaskExecutor],
      useFactory: (db: DataSource, broker: BrokerStatus, registry: WorkerRegistry, executor: TaskExecutor): ReadinessCheck[] => [
        { name: 'database', check: async () => void (await db.query('SELECT 1')) },
        { name: 'broker', check: () => broker.isReady() },
        { name: 'consumer', check: () => executor.isConsuming() && registry.healthy() },
      ],
    }),
  ],
  providers: [
    { provide: TASK_TYPES_CONFIG, inject: [ConfigService], useFactory: config },
    ...HANDLERS,
  ],
})
export class WorkerModule {}
