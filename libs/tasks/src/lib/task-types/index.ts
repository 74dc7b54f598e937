/** @internal What the rest of the lib uses of the task types (the public names are in src/index.ts). */
export { BUILTIN_TASK_TYPES } from './builtin-task-types';
export type { TaskTypesConfig } from './task-type';
export { TaskTypeRegistry } from './task-type.registry';
