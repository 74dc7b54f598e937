import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Test, type TestingModule } from '@nestjs/testing';
import { connect } from 'amqplib';
import { testRabbitmqUrl, uniqueName, waitFor } from '@tasksys/testing';
import { BrokerStatus } from './lib/broker-status';
import { ConsumerFactory } from './lib/consuming/consumer.factory';
import { messagingConfigSchema, type MessagingConfig, rabbitmqUrls } from './lib/messaging.config';
import { MessagingModule } from './lib/messaging.module';
import { TaskPublisher } from './lib/publishing/task.publisher';
import { Topology } from './lib/topology/topology';

/** Config with a namespace of its own (`test-<random>`), short publish timeout, 300 ms / 1 s retry tiers. */
export function testMessagingConfig(overrides: Partial<Record<keyof MessagingConfig, string>> = {}): MessagingConfig {
  return messagingConfigSchema.parse({
    RABBITMQ_URL: testRabbitmqUrl(),
    TASKS_NAMESPACE: uniqueName('test-', 5),
    RABBITMQ_PUBLISH_TIMEOUT_MS: '3000',
    RETRY_TIERS_MS: '300,1000',
    OUTBOX_POLL_MS: '200',
    ...overrides,
  });
}

/** Deletes every exchange and queue `topology` declares (plus `extra` names), on a plain connection. */
export async function deleteTopology(
  topology: Topology,
  extra: { queues?: string[]; exchanges?: string[] } = {},
  url = testRabbitmqUrl(),
): Promise<void> {
  const conn = await connect(rabbitmqUrls(url)[0]);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    for (const q of [...topology.declarations.queues.map((d) => d.name), ...(extra.queues ?? [])])
      await ch.deleteQueue(q);
    for (const x of [...topology.declarations.exchanges.map((d) => d.name), ...(extra.exchanges ?? [])])
      await ch.deleteExchange(x);
    await ch.close();
  } finally {
    await conn.close();
  }
}

export interface TestMessaging {
  module: TestingModule;
  config: MessagingConfig;
  topology: Topology;
  amqp: AmqpConnection;
  publisher: TaskPublisher;
  consumers: ConsumerFactory;
  status: BrokerStatus;
  /** Closes the app (the connection) and deletes the namespace's topology. */
  close(extra?: { queues?: string[]; exchanges?: string[] }): Promise<void>;
}

/**
 * A started MessagingModule on the local broker with its own namespace, ready (topology declared).
 * golevelup keeps static state: one per test file.
 */
export async function createTestMessaging(
  config: MessagingConfig = testMessagingConfig(),
  waitReady = true,
  /** Task types whose work queues it declares, as a worker serving them would. */
  serves: readonly string[] = [],
): Promise<TestMessaging> {
  const module = await Test.createTestingModule({
    imports: [MessagingModule.forRootAsync({ useFactory: () => ({ ...config, serves }) })],
  }).compile();
  module.enableShutdownHooks();
  await module.init();
  const status = module.get(BrokerStatus);
  if (waitReady) await waitFor('the broker to be ready', () => status.isReady(), 10_000, 25);
  const topology = module.get(Topology);
  return {
    module,
    config,
    topology,
    amqp: module.get(AmqpConnection),
    publisher: module.get(TaskPublisher),
    consumers: module.get(ConsumerFactory),
    status,
    async close(extra) {
      await module.close();
      await deleteTopology(topology, extra, config.RABBITMQ_URL);
    },
  };
}
