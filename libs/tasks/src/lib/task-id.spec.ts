import { validate, version } from 'uuid';
import { newTaskId } from './task-id';

describe('newTaskId', () => {
  it('makes valid version 7 UUIDs of the RFC 9562 variant', () => {
    for (let i = 0; i < 1000; i++) {
      const id = newTaskId();
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });

  it('orders ids by the time they were made, also within one millisecond, as text and as PostgreSQL compares uuids', () => {
    // PostgreSQL compares uuids bytewise, which for lowercase hex is the order of the text.
    const ids = Array.from({ length: 10_000 }, () => newTaskId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('carries the time it was made in its first 48 bits', () => {
    const before = Date.now();
    const id = newTaskId();
    const after = Date.now();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('differs in its random bits between ids of the same millisecond (not a bare counter)', () => {
    const ids = Array.from({ length: 1000 }, () => newTaskId());
    // The last 40 bits are random (the counter ends before them).
    const tails = new Set(ids.map((id) => id.slice(-10)));
    expect(tails.size).toBe(ids.length);
  });
});
