import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { ScheduleFirer, SCHEDULES_CONFIG } from './schedule-firer.service';
import { ScheduleStore } from './schedule.store';
import type { SchedulesConfig } from './schedules.config';

const definition = new ConfigurableModuleBuilder<SchedulesConfig>({ optionsInjectionToken: SCHEDULES_CONFIG })
  .setClassMethodName('forRoot')
  .build();

/** `SchedulesModule.forRootAsync(fromConfig(schedulesConfigSchema))`. */
export type SchedulesModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * Cron schedules: the store the api writes through and the firer every api and worker runs (from
 * application bootstrap unless SCHEDULER_ENABLED is off). Needs TasksModule (global).
 */
@Module({
  providers: [ScheduleStore, ScheduleFirer],
  exports: [ScheduleStore, ScheduleFirer],
})
export class SchedulesModule extends definition.ConfigurableModuleClass {}
