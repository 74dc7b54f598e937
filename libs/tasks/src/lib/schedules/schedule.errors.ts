import { AppError, ERROR_CODES } from '@tasksys/platform';

/** A schedule request wrong in one named place (`cron`, `timezone`, `task.type`, `task.payload.ms`): a 400. */
export class InvalidScheduleError extends AppError {
  readonly code = ERROR_CODES.REQUEST_INVALID;

  constructor(field: string, message: string) {
    super(message, { field });
  }
}

/** No such schedule, or not one the caller may see (owners never learn whether another owner's exists). */
export class ScheduleNotFoundError extends AppError {
  readonly code = ERROR_CODES.SCHEDULE_NOT_FOUND;

  constructor(readonly scheduleId: string) {
    super(`schedule ${scheduleId} not found`);
  }
}

/** The owner has a schedule of that name already. */
export class ScheduleNameTakenError extends AppError {
  readonly code = ERROR_CODES.SCHEDULE_NAME_TAKEN;

  constructor(name: string) {
    super(`name: a schedule named ${JSON.stringify(name)} exists already`, { field: 'name' });
  }
}
