import { type DynamicModule, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { BrokerAdminModule, BrokerStatus, type MessagingConfig, messagingConfigSchema, MessagingModule, OutboxRelayModule } from '@tasksys/messaging';
import { HealthModule, LoggingModule, MetricsModule, validateEnv } from '@tasksys/platform';
import {
  BUILTIN_TASK_TYPES,
  type DatabaseConfig,
  DistributedRateLimiter,
  RateLimitModule,
  TaskQueriesModule,
  TasksAdminModule,
  TasksModule,
  TaskStoreMetrics,
  TaskTypeRegistry,
} from '@tasksys/tasks';
import { DataSource } from 'typeorm';
import { AdminController } from './admin/admin.controller';
import { AdminMetrics } from './admin/admin.metrics';
import { type ApiConfig, apiConfigSchema } from './api.config';
import { ApiKeyThrottlerGuard } from './auth/api-key-throttler.guard';
import { ApiKeyGuard } from './auth/api-key.guard';
import { SharedThrottlerStorage } from './auth/shared-throttler.storage';
import { ApiExceptionFilter } from './errors/api-exception.filter';
import { RequireJsonMiddleware } from './errors/require-json.middleware';
import { createValidationPipe } from './errors/validation';
import { TaskStreamService } from './tasks/task-stream.service';
import { TasksController } from './tasks/tasks.controller';
import { TasksService } from './tasks/tasks.service';

export interface AppModuleOptions {
  /** Variables layered over process.env (tests pass their schema and namespace here). */
  env?: Record<string, string | undefined>;
}

type Config = ConfigService<ApiConfig, true>;

/** The HTTP API: tasks, admin, health, metrics; the outbox relay runs here too (never handlers: see MessagingModule). */
@Module({})
export class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequireJsonMiddleware).forRoutes('*path');
  }

  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          validate: (raw) => validateEnv(apiConfigSchema)({ ...raw, ...options.env }),
        }),
        LoggingModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (c: Config) => ({ level: c.get('LOG_LEVEL', { infer: true }), quietPaths: ['/health', '/metrics'] }),
        }),
        MetricsModule,
        TasksModule.forRootAsync({
          inject: [ConfigService] as never[],
          useFactory: (c: Config): DatabaseConfig => ({
            DATABASE_URL: c.get('DATABASE_URL', { infer: true }),
            DATABASE_SCHEMA: c.get('DATABASE_SCHEMA', { infer: true }),
            DATABASE_POOL_SIZE: c.get('DATABASE_POOL_SIZE', { infer: true }),
            DATABASE_MIGRATE: c.get('DATABASE_MIGRATE', { infer: true }),
            DATABASE_QUERY_TIMEOUT_MS: c.get('DATABASE_QUERY_TIMEOUT_MS', { infer: true }),
          }),
        }),
        MessagingModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (c: Config) =>
            Object.fromEntries(Object.keys(messagingConfigSchema.shape).map((k) => [k, c.get(k as keyof ApiConfig)])) as MessagingConfig,
        }),
        // Publishes what state changes wrote to the outbox (work and cancel signals); the api never publishes directly.
        OutboxRelayModule,
        TaskQueriesModule,
        // Operators: queue figures, dead-letter and unrouted redrive, the worker fleet, reconcile.
        BrokerAdminModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (c: Config) => ({
            RABBITMQ_MANAGEMENT_URL: c.get('RABBITMQ_MANAGEMENT_URL', { infer: true }),
            RABBITMQ_MANAGEMENT_TIMEOUT_MS: c.get('RABBITMQ_MANAGEMENT_TIMEOUT_MS', { infer: true }),
          }),
        }),
        TasksAdminModule,
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
          useFactory: (db: DataSource, broker: BrokerStatus) => [
            { name: 'database', check: async () => void (await db.query('SELECT 1')) },
            {
              name: 'broker',
              check: () => {
                if (!broker.isReady()) throw new Error(broker.lastError()?.message ?? 'not connected or topology not declared');
              },
            },
          ],
        }),
      ],
      controllers: [TasksController, AdminController],
      providers: [
        {
          provide: TaskTypeRegistry,
          inject: [ConfigService],
          useFactory: (c: Config) =>
            new TaskTypeRegistry(BUILTIN_TASK_TYPES, {
              SQL_TARGET_URL: c.get('SQL_TARGET_URL', { infer: true }),
              DEMO_ALLOW_CRASH: c.get('DEMO_ALLOW_CRASH', { infer: true }),
            }),
        },
        TasksService,
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
