export * from './builtin-task-types';
export * from './task-type';
export * from './task-type.registry';
