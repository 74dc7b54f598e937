import { Logger } from '@nestjs/common';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import type { Consumer, ConsumerFactory, OutboxRelayService, RoutingUpkeep, Topology } from '@tasksys/messaging';
import type { TaskExecutor, TaskPromoter, TaskSweeper, WorkerConfig, WorkerRegistry, WorkIntake } from '@tasksys/tasks';

export interface TaskConsumerDeps {
  consumers: ConsumerFactory;
  topology: Topology;
  executor: TaskExecutor;
  /** Where deliveries enter: splits bundles, counts WORKER_CONCURRENCY in tasks. */
  intake: WorkIntake;
  registry: WorkerRegistry;
  sweeper: TaskSweeper;
  promoter: TaskPromoter;
  /** The worker's own relay: the promoter wakes it, so a task that came due is published at once. */
  relay: OutboxRelayService;
  routing: RoutingUpkeep;
  config: WorkerConfig;
}

/**
 * Nest's microservice transport for the work queue: `listen()` starts consuming (and the fleet
 * heartbeat, sweeper and promoter), `close()` stops new deliveries, drains in-flight tasks within the grace
 * period and hands the rest back. Nest calls close() on app.close() (SIGTERM), before it closes
 * the broker connection and the database pool.
 */
export class TaskConsumerStrategy extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(TaskConsumerStrategy.name);
  private work: Consumer | null = null;
  private control: Consumer | null = null;

  constructor(private readonly deps: TaskConsumerDeps) {
    super();
  }

  async listen(callback: (...optionalParams: unknown[]) => void): Promise<void> {
    const { consumers, topology, executor, intake, registry, sweeper, promoter, relay, routing, config } = this.deps;
    try {
      await registry.start(() => executor.inFlight());
      this.control = consumers.subscribeControl((msg) => executor.cancelLocal(msg.taskId, msg.attempt));
      const queues = topology.servedQueues();
      // One limit across every queue: WORKER_CONCURRENCY tasks in flight, whatever their types.
      this.work = consumers.createWorkConsumer(queues, {
        prefetch: config.WORKER_CONCURRENCY,
        onMessage: (delivery) => void intake.handle(delivery),
      });
      const work = this.work;
      intake.onPrefetch((prefetch) => void work.setPrefetch(prefetch));
      sweeper.start();
      promoter.start(() => relay.wake());
      routing.start();
      executor.setConsuming(true);
      this.log.log(
        `worker ${config.WORKER_ID} consuming ${queues.join(', ')} with concurrency ${config.WORKER_CONCURRENCY}`,
      );
      callback();
    } catch (err) {
      callback(err);
    }
  }

  async close(): Promise<void> {
    const { executor, intake, registry, sweeper, promoter, routing, config } = this.deps;
    if (!executor.isConsuming()) return;
    executor.setConsuming(false);
    this.log.log(`stopping: ${executor.inFlight()} task(s) in flight, grace ${config.WORKER_SHUTDOWN_GRACE_MS} ms`);
    await this.work?.stop();
    await sweeper.stop();
    await promoter.stop();
    await routing.stop();
    await intake.drain(config.WORKER_SHUTDOWN_GRACE_MS);
    await this.work?.close();
    await this.control?.close();
    await registry.stop();
    this.log.log('stopped');
  }

  on(): never {
    throw new Error('TaskConsumerStrategy has no events');
  }

  unwrap<T>(): T {
    return this.deps as T;
  }
}
