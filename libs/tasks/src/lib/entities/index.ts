import { ApiKey } from './api-key.entity';
import { OutboxMessage } from './outbox-message.entity';
import { TaskEvent } from './task-event.entity';
import { TaskReport } from './task-report.entity';
import { Task } from './task.entity';
import { Worker } from './worker.entity';

export { ApiKey, OutboxMessage, Task, TaskEvent, TaskReport, Worker };
export type { ApiKeyRole } from './api-key.entity';
export type { TaskError } from './task.entity';

/** @internal The explicit entity list handed to TypeORM (no globbing). */
export const TASKS_ENTITIES = [Task, TaskEvent, OutboxMessage, ApiKey, TaskReport, Worker];
