// Imported first by main.ts: the instrumentations must patch http and pg before anything loads them.
import { startTracing } from '@tasksys/platform/tracing';

try {
  startTracing({ serviceName: 'tasksys-api' });
} catch (err) {
  // A bad OTEL_* variable is named, as every other configuration problem is.
  console.error((err as Error).message);
  process.exit(1);
}
