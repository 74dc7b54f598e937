import { Global, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { shutdownTracing } from './spans';

/** @internal Exports the spans still buffered once everything else has shut down (no-op when tracing is off). */
@Injectable()
export class TracingShutdown implements OnApplicationShutdown {
  onApplicationShutdown(): Promise<void> {
    return shutdownTracing();
  }
}

/** Flushes traces within the app's graceful shutdown; tracing itself is started by `startTracing` in main.ts. */
@Global()
@Module({ providers: [TracingShutdown] })
export class TracingModule {}
