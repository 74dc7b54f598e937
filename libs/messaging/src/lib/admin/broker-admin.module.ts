import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { BROKER_ADMIN_CONFIG, type BrokerAdminConfig } from './broker-admin.config';
import { QueueStatsReader } from './queue-stats.reader';

const definition = new ConfigurableModuleBuilder<BrokerAdminConfig>({
  optionsInjectionToken: BROKER_ADMIN_CONFIG,
})
  .setClassMethodName('forRoot')
  .setExtras({}, (dynamicModule) => ({ ...dynamicModule, global: true }))
  .build();

/** `BrokerAdminModule.forRootAsync(...)`: the config from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type BrokerAdminModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * Broker inspection for operators: queue figures from the management API (browsing and redriving
 * the dead-letter and unrouted queues come with MessagingModule). Global; needs MessagingModule in the app.
 */
@Module({
  providers: [QueueStatsReader],
  exports: [QueueStatsReader, BROKER_ADMIN_CONFIG],
})
export class BrokerAdminModule extends definition.ConfigurableModuleClass {}
