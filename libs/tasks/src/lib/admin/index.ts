export * from './reconcile.command';
export * from './redrive-dead-letters.command';
export * from './tasks-admin.module';
export * from './worker-fleet.query';
