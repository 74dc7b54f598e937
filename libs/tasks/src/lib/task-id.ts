import { v7 as uuidv7 } from 'uuid';

/**
 * A new task's id: a UUIDv7 (RFC 9562), its first 48 bits the time in ms, then a counter the library
 * keeps per process (so ids made in one millisecond still increase), then random bits. New tasks go
 * to the right edge of the `tasks` primary key instead of a random leaf: with 10,000,000 finished
 * tasks, random UUIDv4 ids cost 40-64% of the batch submit rate (bench/RESULTS.md, scenario (c)),
 * every insert reading and dirtying a leaf that had long left the cache. Ids come from here only;
 * any UUID is still accepted wherever one is read (messages, cursors, paths). Task ids are no secret:
 * access is checked by owner, and the time they carry is the task's `createdAt` anyway.
 */
export function newTaskId(): string {
  return uuidv7();
}
