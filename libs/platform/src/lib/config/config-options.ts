import { ConfigService } from '@nestjs/config';
import type { z } from 'zod';
import { configFrom } from './validate-env';

/** The `inject` and `useFactory` of a module's async options (or of a factory provider), read from ConfigService. */
export interface OptionsFromConfig<T> {
  inject: [typeof ConfigService];
  useFactory: (config: ConfigService) => T;
}

/**
 * How both apps turn their validated environment into a module's options, in one way: the values
 * of `schema`'s variables (see `configFrom`), optionally mapped. Spread it into `forRootAsync` or a
 * factory provider:
 *
 * ```ts
 * TasksModule.forRootAsync(fromConfig(databaseConfigSchema))
 * LoggingModule.forRootAsync(fromConfig(loggingConfigSchema, (c) => ({ level: c.LOG_LEVEL })))
 * { provide: TaskTypeRegistry, ...fromConfig(taskTypesConfigSchema, (c) => new TaskTypeRegistry(BUILTIN_TASK_TYPES, c)) }
 * ```
 */
export function fromConfig<S extends z.ZodObject>(schema: S): OptionsFromConfig<z.infer<S>>;
export function fromConfig<S extends z.ZodObject, T>(schema: S, map: (values: z.infer<S>) => T): OptionsFromConfig<T>;
export function fromConfig<S extends z.ZodObject, T>(
  schema: S,
  map?: (values: z.infer<S>) => T,
): OptionsFromConfig<T | z.infer<S>> {
  return {
    inject: [ConfigService],
    useFactory: (config: ConfigService) => {
      const values = configFrom(schema, config);
      return map ? map(values) : values;
    },
  };
}
