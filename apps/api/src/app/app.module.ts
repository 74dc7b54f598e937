import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { DataSource } from 'typeorm';
import {
  BrokerAdminModule,
  brokerAdminConfigSchema,
  BrokerStatus,
  messagingConfigSchema,
  MessagingModule,
  OutboxRelayModule,
} from '@tasksys/messaging';
import {
  configFrom,
  fromConfig,
  HealthModule,
  loggingConfigSchema,
  LoggingModule,
  MetricsModule,
  TracingModule,
  validateEnv,
} from '@tasksys/platform';
import {
  BUILTIN_TASK_TYPES,
  databaseConfigSchema,
  DistributedRateLimiter,
  RateLimitModule,
  SchedulesModule,
  schedulesConfigSchema,
  TaskQueriesModule,
  TasksAdminModule,
  TasksModule,
  TaskStoreMetrics,
  taskTypesConfigSchema,
  TaskTypeRegistry,
  WebhooksModule,
  webhooksConfigSchema,
} from '@tasksys/tasks';
import { AdminController } from './admin/admin.controller';
import { AdminMetrics } from './admin/admin.metrics';
import { OwnerLimitsController } from './admin/owner-limits.controller';
import { type ApiConfig, apiConfigSchema } from './api.config';
import { ApiKeyThrottlerGuard } from './auth/api-key-throttler.guard';
import { ApiKeyGuard } from './auth/api-key.guard';
import { SharedThrottlerStorage } from './auth/shared-throttler.storage';
import { ApiExceptionFilter } from './errors/api-exception.filter';
import { createValidationPipe } from './errors/validation';
import { SchedulesController } from './schedules/schedules.controller';
import { SchedulesService } from './schedules/schedules.service';
import { TaskStreamService } from './tasks/task-stream.service';
import { toTaskView } from './tasks/task.views';
import { TasksController } from './tasks/tasks.controller';
import { TasksService } from './tasks/tasks.service';
import { WebhooksController } from './webhooks/webhooks.controller';

export interface AppModuleOptions {
  /** Variables layered over process.env (tests pass their schema and namespace here). */
  env?: Record<string, string | undefined>;
}

type Config = ConfigService<ApiConfig, true>;

/** Probes and scrapes: no log line per request. */
const QUIET_PATHS = ['/health', '/metrics'];

/** The HTTP API: tasks, admin, health, metrics; the outbox relay runs here too (never handlers: see MessagingModule). */
@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          validate: (raw) => validateEnv(apiConfigSchema)({ ...raw, ...options.env }),
        }),
        TracingModule, // flushes traces on shutdown (started, if configured, by main.ts)
        // Every lib module's options are its own variables of the validated environment (fromConfig).
        LoggingModule.forRootAsync(
          fromConfig(loggingConfigSchema, (c) => ({ level: c.LOG_LEVEL, quietPaths: QUIET_PATHS })),
        ),
        MetricsModule,
        TasksModule.forRootAsync(fromConfig(databaseConfigSchema)),
        MessagingModule.forRootAsync(fromConfig(messagingConfigSchema)),
        // Publishes what state changes wrote to the outbox (work and cancel signals); the api never publishes directly.
        OutboxRelayModule.register({ listen: true }),
        TaskQueriesModule,
        // Operators: queue figures, dead-letter and unrouted redrive, the worker fleet, reconcile.
        BrokerAdminModule.forRootAsync(fromConfig(brokerAdminConfigSchema)),
        TasksAdminModule,
        // Completion webhooks: every api process dispatches; the body is the task as GET /v1/tasks/:id shows it.
        WebhooksModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (c: Config) => ({
            config: configFrom(webhooksConfigSchema, c),
            render: (task) => toTaskView(task),
            dispatch: true,
          }),
        }),
        // Cron schedules: the store, and a firer in every replica (one task per fire time whatever their number).
        SchedulesModule.forRootAsync(fromConfig(schedulesConfigSchema)),
        // Budgets shared by all replicas through PostgreSQL: per key here, per client address in ApiKeyGuard.
        RateLimitModule,
        ThrottlerModule.forRootAsync({
          imports: [RateLimitModule],
          inject: [ConfigService, DistributedRateLimiter],
          useFactory: (c: Config, limiter: DistributedRateLimiter) => ({
            throttlers: [{ name: 'default', ttl: 60_000, limit: c.get('RATE_LIMIT_PER_MINUTE', { infer: true }) }],
            storage: new SharedThrottlerStorage(limiter),
          }),
        }),
        HealthModule.forRootAsync({
          inject: [DataSource, BrokerStatus],
          useFactory: (db: DataSource, broker: BrokerStatus) => ({
            checks: [
              { name: 'database', check: async () => void (await db.query('SELECT 1')) },
              {
                name: 'broker',
                check: () => {
                  if (!broker.isReady())
                    throw new Error(broker.lastError()?.message ?? 'not connected or topology not declared');
                },
              },
            ],
          }),
        }),
      ],
      controllers: [TasksController, AdminController, WebhooksController, OwnerLimitsController, SchedulesController],
      providers: [
        {
          provide: TaskTypeRegistry,
          ...fromConfig(taskTypesConfigSchema, (c) => new TaskTypeRegistry(BUILTIN_TASK_TYPES, c)),
        },
        TasksService,
        SchedulesService,
        TaskStreamService,
        TaskStoreMetrics,
        AdminMetrics,
        // Guards run in this order: authenticate (rate-limiting requests without a known key per address), then rate-limit per key.
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_GUARD, useClass: ApiKeyThrottlerGuard },
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
