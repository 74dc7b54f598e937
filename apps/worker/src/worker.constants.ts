/** Injection token of the validated task-type configuration (SQL_TARGET_URL, DEMO_ALLOW_CRASH). */
export const TASK_TYPES_CONFIG = Symbol('TASK_TYPES_CONFIG');
