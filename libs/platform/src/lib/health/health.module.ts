import { type DynamicModule, type InjectionToken, Module, type OptionalFactoryDependency } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { READINESS_CHECKS, type ReadinessCheck } from './readiness-check';

export interface HealthModuleAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** The app's readiness checks (e.g. a database ping and the broker's status). */
  useFactory: (...args: any[]) => ReadinessCheck[] | Promise<ReadinessCheck[]>;
}

/** Liveness and readiness endpoints over terminus; the app supplies what "ready" means. */
@Module({})
export class HealthModule {
  static forRootAsync(options: HealthModuleAsyncOptions): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), ...(options.imports ?? [])],
      controllers: [HealthController],
      providers: [{ provide: READINESS_CHECKS, inject: options.inject ?? [], useFactory: options.useFactory }],
    };
  }
}
