import { ApiError } from '../errors/api.errors';

/** The broker could not be inspected (not connected): 503, retry later. */
export class BrokerUnavailableApiError extends ApiError {
  readonly code = 'BROKER.UNAVAILABLE';
  readonly status = 503;
}
