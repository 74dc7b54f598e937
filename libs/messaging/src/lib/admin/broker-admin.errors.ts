/** The broker cannot be inspected right now (not connected). Stable code for the HTTP filter. */
export class BrokerUnavailableError extends Error {
  readonly code = 'BROKER.UNAVAILABLE';
  constructor(detail: string) {
    super(`RabbitMQ unavailable: ${detail}`);
    this.name = 'BrokerUnavailableError';
  }
}
