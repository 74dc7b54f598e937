import { Injectable } from '@nestjs/common';
import { TopologyDeclarer } from './topology/topology-declarer';

/** Broker readiness for health probes. */
@Injectable()
export class BrokerStatus {
  constructor(private readonly declarer: TopologyDeclarer) {}

  /** Connected to RabbitMQ and the topology is declared on this connection. */
  isReady(): boolean {
    return this.declarer.isDeclared();
  }

  /** Why it is not ready, when known (for example a `TopologyMismatchError`). */
  lastError(): Error | null {
    return this.declarer.lastError();
  }
}
