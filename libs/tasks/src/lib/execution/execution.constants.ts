import { Inject } from '@nestjs/common';

/** Injection token of the validated WorkerConfig. */
export const WORKER_CONFIG = Symbol('WORKER_CONFIG');

/** @internal Injects the WorkerConfig: `@InjectWorkerConfig() config: WorkerConfig`. */
export const InjectWorkerConfig = () => Inject(WORKER_CONFIG);

/** @internal Injection token of ExecutionModule's options. */
export const EXECUTION_OPTIONS = Symbol('EXECUTION_OPTIONS');
