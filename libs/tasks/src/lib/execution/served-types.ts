import { ConfigurationError } from '@tasksys/platform';
import { BUILTIN_TASK_TYPES, type TaskTypesConfig, TaskTypeRegistry } from '../task-types';
import { HandlesTask } from './task-handler';

/** The task type a handler class is registered for with `@HandlesTask(type)`. */
export function handledType(handler: abstract new (...args: never[]) => unknown): string {
  const type: unknown = Reflect.getMetadata(HandlesTask.KEY, handler);
  if (typeof type !== 'string') throw new Error(`${handler.name} has no @HandlesTask(type)`);
  return type;
}

/**
 * The task types a worker serves, whose queues it declares, binds and consumes: WORKER_TASK_TYPES
 * when set (each must have a handler here and be runnable with this worker's settings), otherwise
 * every type it has a handler for that its settings let it run. A bad item stops start-up naming
 * the variable and the item.
 */
export function resolveServedTypes(
  config: TaskTypesConfig & { WORKER_TASK_TYPES?: string[] },
  handled: readonly string[],
): string[] {
  const registry = new TaskTypeRegistry(BUILTIN_TASK_TYPES, config);
  const wanted = config.WORKER_TASK_TYPES;
  if (!wanted) {
    const runnable = handled.filter((type) => registry.unavailable(type) === null);
    if (runnable.length === 0)
      throw new ConfigurationError([
        `no task type this worker handles (${handled.join(', ')}) can run with its settings`,
      ]);
    return runnable;
  }
  const problems: string[] = [];
  for (const type of wanted) {
    if (!handled.includes(type))
      problems.push(`WORKER_TASK_TYPES: "${type}" has no handler in this worker (it handles ${handled.join(', ')})`);
    else {
      const why = registry.unavailable(type);
      if (why) problems.push(`WORKER_TASK_TYPES: "${type}" cannot run here: ${why}`);
    }
  }
  if (problems.length > 0) throw new ConfigurationError(problems);
  return [...new Set(wanted)];
}
