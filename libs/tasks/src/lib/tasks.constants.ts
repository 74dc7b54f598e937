import { Inject } from '@nestjs/common';

/** @internal Injection token of the validated DatabaseConfig (TasksModule's options). */
export const DATABASE_CONFIG = Symbol('DATABASE_CONFIG');

/** @internal Injects the DatabaseConfig: `@InjectDatabaseConfig() config: DatabaseConfig`. */
export const InjectDatabaseConfig = () => Inject(DATABASE_CONFIG);
