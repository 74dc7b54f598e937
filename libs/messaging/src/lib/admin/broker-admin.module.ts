import { type DynamicModule, Module } from '@nestjs/common';
import { BROKER_ADMIN_CONFIG, type BrokerAdminConfig } from './broker-admin.config';
import { QueueStatsReader } from './queue-stats.reader';

/**
 * Broker inspection for operators: queue figures from the management API (browsing and redriving
 * the dead-letter and unrouted queues come with MessagingModule). Needs MessagingModule (global) in the app.
 */
@Module({})
export class BrokerAdminModule {
  static forRootAsync(options: {
    // Nest's own factory providers type their arguments as any[]; the same here.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    inject?: any[];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    useFactory: (...args: any[]) => BrokerAdminConfig;
  }): DynamicModule {
    return {
      module: BrokerAdminModule,
      global: true,
      providers: [{ provide: BROKER_ADMIN_CONFIG, inject: options.inject ?? [], useFactory: options.useFactory }, QueueStatsReader],
      exports: [QueueStatsReader, BROKER_ADMIN_CONFIG],
    };
  }
}
