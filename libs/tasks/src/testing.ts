export * from './lib/testing/test-database';
export * from './lib/testing/outbox-rows';
