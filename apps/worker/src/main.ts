import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { MessagingConsumers, TOPOLOGY, type Topology } from '@tasksys/messaging';
import { ConfigurationError } from '@tasksys/platform';
import { TaskExecutor, TaskSweeper, WORKER_CONFIG, type WorkerConfig, WorkerRegistry } from '@tasksys/tasks';
import { TaskConsumerStrategy } from './transport/task-consumer.strategy';
import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(WorkerModule, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  const config = app.get<WorkerConfig>(WORKER_CONFIG);
  app.connectMicroservice(
    {
      strategy: new TaskConsumerStrategy({
        consumers: app.get(MessagingConsumers),
        topology: app.get<Topology>(TOPOLOGY),
        executor: app.get(TaskExecutor),
        registry: app.get(WorkerRegistry),
        sweeper: app.get(TaskSweeper),
        config,
      }),
    },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  await app.listen(config.WORKER_HEALTH_PORT, '0.0.0.0');
  app.get(Logger).log(`health on :${config.WORKER_HEALTH_PORT}/health/ready`, 'Worker');
}

bootstrap().catch((err) => {
  // A bad variable is named, not buried in a stack trace.
  if (err instanceof ConfigurationError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});
