import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { HEALTH_OPTIONS, type HealthModuleOptions } from './readiness-check';

const definition = new ConfigurableModuleBuilder<HealthModuleOptions>({
  optionsInjectionToken: HEALTH_OPTIONS,
})
  .setClassMethodName('forRoot')
  .build();

/** `HealthModule.forRootAsync(...)`: the checks from a factory (`inject`, `useFactory`), `useClass` or `useExisting`. */
export type HealthModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/** Liveness and readiness endpoints over terminus; the app supplies what "ready" means. */
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' })],
  controllers: [HealthController],
})
export class HealthModule extends definition.ConfigurableModuleClass {}
