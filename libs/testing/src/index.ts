export { AppProcess, type AppName, type AppProcessOptions, type Exit } from './lib/app-process';
export { freePort, isPortFree } from './lib/free-port';
export { ProcessFleet, type ProcessFleetOptions } from './lib/process-fleet';
export {
  createScratchDatabase,
  type ScratchDatabase,
  testDatabaseUrl,
  testRabbitmqUrl,
  uniqueName,
} from './lib/test-services';
export { GiveUp, type Truthy, waitFor } from './lib/wait-for';
export { TEST_LOG_DIR, WORKSPACE_ROOT } from './lib/workspace';
export { CLUSTER_ROOT, type ClusterNode, RabbitmqCluster, type RabbitmqClusterOptions } from './lib/rabbitmq-cluster';
