import { Cron } from 'croner';
import { InvalidScheduleError } from './schedule.errors';

/** IANA names only (`Area/Location`, `UTC`, `Etc/GMT+5`): Intl would also take offsets on newer runtimes. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

/**
 * A validated cron expression in an IANA time zone: 5 fields (minute first, second 0), or 6 with the
 * second first. croner does the parsing, but it also accepts 7 fields (a year) and nicknames (`@daily`):
 * the field count is checked here. Day-of-month and day-of-week combine with OR, as in Vixie cron.
 *
 * Time zones follow the wall clock: a time that does not exist on a spring-forward day (02:30 in
 * Europe/Berlin) fires at the first valid time after the gap (03:00 local); a time that happens twice
 * on a fall-back day fires once, at its first occurrence.
 */
export class CronExpression {
  private readonly cron: Cron;

  private constructor(
    readonly expression: string,
    readonly timezone: string,
  ) {
    this.cron = new Cron(expression, { timezone, paused: true, mode: '5-or-6-parts' });
  }

  /** The expression and zone checked; InvalidScheduleError names `cron` or `timezone` (with `prefix`). */
  static parse(expression: string, timezone = 'UTC', prefix = ''): CronExpression {
    const zone = checkTimezone(timezone, prefix);
    const fields = expression.trim().split(/\s+/).filter(Boolean);
    if (fields.length !== 5 && fields.length !== 6)
      throw new InvalidScheduleError(
        `${prefix}cron`,
        `${prefix}cron must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; got ${fields.length}`,
      );
    let parsed: CronExpression;
    try {
      parsed = new CronExpression(fields.join(' '), zone);
    } catch (err) {
      const reason = (err as Error).message.replace(/^CronPattern:\s*/, '');
      throw new InvalidScheduleError(`${prefix}cron`, `${prefix}cron is not a valid cron expression: ${reason}`);
    }
    // A valid pattern that never matches (31 February) would leave a schedule with no next run.
    if (parsed.nextAfter(new Date()) === null)
      throw new InvalidScheduleError(`${prefix}cron`, `${prefix}cron never matches a date`);
    return parsed;
  }

  /** The first fire time strictly after `instant`; null when none is left. */
  nextAfter(instant: Date): Date | null {
    return this.cron.nextRun(instant);
  }

  /** The latest fire time at or before `instant`; null when none in the past. */
  latestAtOrBefore(instant: Date): Date | null {
    // previousRuns is strictly before its reference.
    return this.cron.previousRuns(1, new Date(instant.getTime() + 1))[0] ?? null;
  }
}

/** An IANA zone name the runtime knows, as given; InvalidScheduleError naming `timezone` otherwise. */
export function checkTimezone(timezone: string, prefix = ''): string {
  const refuse = () =>
    new InvalidScheduleError(
      `${prefix}timezone`,
      `${prefix}timezone must be an IANA time zone name such as UTC or Europe/Berlin; got ${JSON.stringify(timezone)}`,
    );
  if (typeof timezone !== 'string' || !ZONE_NAME.test(timezone)) throw refuse();
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw refuse();
  }
  return timezone;
}
