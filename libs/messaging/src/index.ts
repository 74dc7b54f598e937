export * from './lib/task-message';
export * from './lib/outbox/outbox.store';
