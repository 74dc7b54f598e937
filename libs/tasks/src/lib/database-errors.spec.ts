import { QueryFailedError } from 'typeorm';
import { isTransientDatabaseError } from './database-errors';

function pgError(code: string, message = 'x'): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

describe('isTransientDatabaseError', () => {
  it.each([
    ['08006 connection failure', pgError('08006')],
    ['53300 too many connections', pgError('53300')],
    ['57P01 admin shutdown (a restart)', pgError('57P01')],
    ['40001 serialization failure', pgError('40001')],
    ['40P01 deadlock', pgError('40P01')],
    ['25006 read-only transaction (after a failover)', pgError('25006')],
    ['ECONNREFUSED', pgError('ECONNREFUSED')],
    ['EPIPE (shaped like a SQLSTATE)', pgError('EPIPE')],
    ['57014 a statement timeout on a busy server', pgError('57014')],
    ['55P03 a lock not available in time', pgError('55P03')],
    ['a dropped connection without a code', new Error('Connection terminated unexpectedly')],
    ['a pool that cannot connect', new Error('timeout exceeded when trying to connect')],
    ['TypeORM wrapping a transient driver error', new QueryFailedError('SELECT 1', [], pgError('57P03'))],
  ])('retries %s', (_name, err) => {
    expect(isTransientDatabaseError(err)).toBe(true);
  });

  it.each([
    ['a TypeError (a bug in our code)', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a RangeError', new RangeError('Invalid time value')],
    ['a plain Error', new Error('something else')],
    ['23505 unique violation', pgError('23505')],
    ['42601 syntax error', pgError('42601')],
    ['08P01 protocol violation (our bug, e.g. a wrong number of parameters)', pgError('08P01')],
    ['22P02 invalid input', new QueryFailedError('SELECT 1', [], pgError('22P02'))],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
  ])('does not retry %s', (_name, err) => {
    expect(isTransientDatabaseError(err)).toBe(false);
  });
});
