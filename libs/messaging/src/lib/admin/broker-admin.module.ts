import { type DynamicModule, Module } from '@nestjs/common';
import { BROKER_ADMIN_CONFIG, type BrokerAdminConfig } from './broker-admin.config';
import { QueueBrowser } from './queue-browser';
import { QueueStatsReader } from './queue-stats.reader';
import { UnroutedRedriver } from './unrouted-redriver';

/**
 * Broker inspection for operators: queue figures and reading (then removing or keeping) messages of
 * the dead-letter and unrouted queues. Needs MessagingModule (global) in the app.
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
      providers: [{ provide: BROKER_ADMIN_CONFIG, inject: options.inject ?? [], useFactory: options.useFactory }, QueueStatsReader, QueueBrowser, UnroutedRedriver],
      exports: [QueueStatsReader, QueueBrowser, UnroutedRedriver, BROKER_ADMIN_CONFIG],
    };
  }
}
