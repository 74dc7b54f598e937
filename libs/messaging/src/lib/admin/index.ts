export * from './broker-admin.config';
export * from './broker-admin.errors';
export * from './broker-admin.module';
export { MAX_BROWSE, QueueBrowser, type BrowsedMessage, type BrowseDecision } from './queue-browser';
export * from './queue-stats.reader';
export * from './unrouted-redriver';
