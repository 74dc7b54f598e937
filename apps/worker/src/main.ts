import './tracing'; // first: see tracing.ts
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { ConsumerFactory, OutboxRelayService, RoutingUpkeep, Topology } from '@tasksys/messaging';
import { ConfigurationError } from '@tasksys/platform';
import {
  ScheduleFirer,
  TaskExecutor,
  WorkIntake,
  TaskPromoter,
  TaskSweeper,
  WORKER_CONFIG,
  type WorkerConfig,
  WorkerRegistry,
} from '@tasksys/tasks';
import { TaskConsumerStrategy } from './transport/task-consumer.strategy';
import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(WorkerModule, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  const config = app.get<WorkerConfig>(WORKER_CONFIG);
  // This relay only polls: a fired schedule's task is published at once, as a promoted one is.
  app.get(ScheduleFirer).onFired(() => app.get(OutboxRelayService).wake());
  app.connectMicroservice(
    {
      strategy: new TaskConsumerStrategy({
        consumers: app.get(ConsumerFactory),
        topology: app.get(Topology),
        executor: app.get(TaskExecutor),
        intake: app.get(WorkIntake),
        registry: app.get(WorkerRegistry),
        sweeper: app.get(TaskSweeper),
        promoter: app.get(TaskPromoter),
        relay: app.get(OutboxRelayService),
        routing: app.get(RoutingUpkeep),
        config,
      }),
    },
    { inheritAppConfig: true },
  );
  await app.init(); // migrations and broker set-up before consuming starts
  await app.startAllMicroservices();
  await app.listen(config.WORKER_HEALTH_PORT, '0.0.0.0');
  app.get(Logger).log(`health on :${config.WORKER_HEALTH_PORT}/health/ready`, 'Worker');

  // Not enableShutdownHooks(): Nest re-raises the signal after closing, and a drained worker exits 0.
  // One shutdown for any number of signals; a hard stop if draining cannot finish (database gone).
  let closing: Promise<void> | null = null;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (closing) return;
      app.get(Logger).log(`${signal}: draining`, 'Worker');
      setTimeout(() => {
        console.error('shutdown did not finish in time; exiting');
        process.exit(1);
      }, config.WORKER_SHUTDOWN_GRACE_MS + 30_000).unref();
      closing = app.close().then(
        () => process.exit(0),
        (err) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
}

bootstrap().catch((err) => {
  // A bad variable is named, not buried in a stack trace.
  if (err instanceof ConfigurationError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});
