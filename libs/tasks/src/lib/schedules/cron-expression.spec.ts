import { CronExpression } from './cron-expression';
import { decideFire } from './schedule-firer.service';
import { InvalidScheduleError } from './schedule.errors';

const at = (iso: string) => new Date(iso);
const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidScheduleError);
    return (err as InvalidScheduleError).field;
  }
  throw new Error('expected an InvalidScheduleError');
};

describe('CronExpression', () => {
  it('accepts 5 fields (seconds 0) and 6 fields with seconds first', () => {
    const five = CronExpression.parse('*/15 * * * *');
    expect(five.nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2026-01-01T00:15:00Z'));
    const six = CronExpression.parse('*/5 * * * * *');
    expect(six.nextAfter(at('2026-01-01T00:00:00Z'))).toEqual(at('2026-01-01T00:00:05Z'));
    expect(six.nextAfter(at('2026-01-01T00:00:05.000Z'))).toEqual(at('2026-01-01T00:00:10Z')); // strictly after
  });

  it.each([
    ['@daily', 'a nickname'],
    ['* * * *', '4 fields'],
    ['0 0 * * * * 2027', '7 fields (a year)'],
    ['61 * * * *', 'minute 61'],
    ['* * * * * * * *', '8 fields'],
    ['hello world a b c', 'words'],
    ['', 'empty'],
    ['0 0 31 2 *', 'never matching (31 February)'],
  ])('refuses %j (%s) naming cron', (expression) => {
    expect(fieldOf(() => CronExpression.parse(expression))).toBe('cron');
  });

  it.each(['Mars/Olympus', '+01:00', 'UTC+1', '', 'Europe/Berlin/../x', 'America/New York'])(
    'refuses the zone %j naming timezone',
    (zone) => {
      expect(fieldOf(() => CronExpression.parse('* * * * *', zone))).toBe('timezone');
    },
  );

  it('prefixes the field for nested requests', () => {
    expect(fieldOf(() => CronExpression.parse('* *', 'UTC', 'schedules[2].'))).toBe('schedules[2].cron');
  });

  it('fires at wall-clock time in its zone', () => {
    const nine = CronExpression.parse('0 9 * * *', 'Asia/Kolkata');
    expect(nine.nextAfter(at('2026-06-01T00:00:00Z'))).toEqual(at('2026-06-01T03:30:00Z')); // 09:00 IST = 03:30 UTC
  });

  it('DST spring-forward: a local time that does not exist fires at the first valid time after the gap', () => {
    const cron = CronExpression.parse('30 2 * * *', 'Europe/Berlin');
    // 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist; it fires at 03:00 CEST (01:00 UTC).
    expect(cron.nextAfter(at('2026-03-28T12:00:00Z'))).toEqual(at('2026-03-29T01:00:00Z'));
    expect(cron.nextAfter(at('2026-03-29T01:00:00Z'))).toEqual(at('2026-03-30T00:30:00Z')); // 02:30 CEST
  });

  it('DST fall-back: a local time that happens twice fires once', () => {
    const cron = CronExpression.parse('30 1 * * *', 'America/New_York');
    const first = cron.nextAfter(at('2026-10-31T12:00:00Z'))!;
    expect(first).toEqual(at('2026-11-01T05:30:00Z')); // 01:30 EDT
    expect(cron.nextAfter(first)).toEqual(at('2026-11-02T06:30:00Z')); // not 01:30 EST an hour later
  });

  it('finds the latest fire time at or before an instant', () => {
    const cron = CronExpression.parse('*/5 * * * * *');
    expect(cron.latestAtOrBefore(at('2026-01-01T00:00:05.000Z'))).toEqual(at('2026-01-01T00:00:05Z'));
    expect(cron.latestAtOrBefore(at('2026-01-01T00:00:09.999Z'))).toEqual(at('2026-01-01T00:00:05Z'));
  });
});

describe('decideFire (the missed-fire policy)', () => {
  const everySecond = CronExpression.parse('* * * * * *');
  const hourly = CronExpression.parse('0 * * * *');

  it('fires a slot that is due now and moves to the next slot', () => {
    const d = decideFire(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:10.040Z'), 5000, false, 'allow');
    expect(d).toEqual({
      fireAt: at('2026-01-01T00:00:10Z'),
      fire: true,
      missed: 0,
      nextRunAt: at('2026-01-01T00:00:11Z'),
    });
  });

  it('within the grace, a firer that fell behind fires each slot in turn', () => {
    const d = decideFire(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:13.5Z'), 5000, false, 'allow');
    expect(d.fireAt).toEqual(at('2026-01-01T00:00:10Z'));
    expect(d.nextRunAt).toEqual(at('2026-01-01T00:00:11Z')); // due at once: the next round fires it
    expect(d.missed).toBe(0);
  });

  it('past the grace (everything was down), fires once for the latest missed slot and goes on after now', () => {
    const d = decideFire(hourly, at('2026-01-01T03:00:00Z'), at('2026-01-01T08:20:00Z'), 5000, false, 'allow');
    expect(d).toEqual({
      fireAt: at('2026-01-01T08:00:00Z'),
      fire: true,
      missed: 5,
      nextRunAt: at('2026-01-01T09:00:00Z'),
    });
  });

  it('a single slot past the grace is fired, late, and nothing is counted missed', () => {
    const d = decideFire(hourly, at('2026-01-01T03:00:00Z'), at('2026-01-01T03:10:00Z'), 5000, false, 'allow');
    expect(d).toEqual({
      fireAt: at('2026-01-01T03:00:00Z'),
      fire: true,
      missed: 0,
      nextRunAt: at('2026-01-01T04:00:00Z'),
    });
  });

  it('overlap skip: no task while the previous one is unfinished, the slot is consumed', () => {
    const d = decideFire(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:10.1Z'), 5000, true, 'skip');
    expect(d.fire).toBe(false);
    expect(d.nextRunAt).toEqual(at('2026-01-01T00:00:11Z'));
    expect(
      decideFire(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:10.1Z'), 5000, true, 'allow').fire,
    ).toBe(true);
  });
});
