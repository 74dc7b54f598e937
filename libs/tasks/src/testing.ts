export * from './lib/testing/test-database';
