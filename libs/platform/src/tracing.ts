// @tasksys/platform/tracing: what main.ts imports before anything else. It must load nothing that
// requires http or pg (the rest of @tasksys/platform pulls Nest in), or those would go uninstrumented.
export { startTracing } from './lib/tracing/start-tracing';
