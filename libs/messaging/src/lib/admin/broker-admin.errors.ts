import { AppError, ERROR_CODES } from '@tasksys/platform';

/** The broker cannot be inspected right now (not connected): retry later. */
export class BrokerUnavailableError extends AppError {
  readonly code = ERROR_CODES.BROKER_UNAVAILABLE;

  constructor(detail: string) {
    super(`RabbitMQ unavailable: ${detail}`);
  }
}
