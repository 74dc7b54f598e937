import { AppError } from './app-error';
import { ERROR_CODES } from './error-codes';

/** Thrown at start-up when an environment variable is missing or malformed; each problem names its variable. */
export class ConfigurationError extends AppError {
  readonly code = ERROR_CODES.CONFIG_INVALID;

  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}
