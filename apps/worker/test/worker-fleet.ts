import type { MessagingConfig } from '@tasksys/messaging';
import { ProcessFleet } from '@tasksys/testing';

/** What the workers of one test share: a schema (createTestDatabase) and a broker namespace (testMessagingConfig). */
export interface FleetServices {
  database: { DATABASE_URL: string; DATABASE_SCHEMA: string };
  messaging: Pick<MessagingConfig, 'RABBITMQ_URL' | 'TASKS_NAMESPACE' | 'RETRY_TIERS_MS'>;
}

/**
 * Real worker processes from the built bundle (`npx nx build worker` first) on the test's schema
 * and namespace, with the retry tiers its topology clean-up deletes; `env` adds to that. Each has a
 * free health port and its log in tmp/test-logs/<label>-w<n>.log. `stopAll()` kills them (-9).
 */
export class WorkerFleet extends ProcessFleet {
  constructor(
    { database, messaging }: FleetServices,
    env: Record<string, string> = {},
    label = messaging.TASKS_NAMESPACE,
  ) {
    super({
      app: 'worker',
      names: `${label}-w`,
      env: {
        DATABASE_URL: database.DATABASE_URL,
        DATABASE_SCHEMA: database.DATABASE_SCHEMA,
        RABBITMQ_URL: messaging.RABBITMQ_URL,
        TASKS_NAMESPACE: messaging.TASKS_NAMESPACE,
        RETRY_TIERS_MS: messaging.RETRY_TIERS_MS.join(','),
        ...env,
      },
    });
  }
}
