import { randomUUID } from 'node:crypto';
import { activeTraceparent } from './spans';

/** W3C trace context: `version-traceid-parentid-flags`, lowercase hex; all-zero ids are invalid. */
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The `traceparent` to hand on for work started by a request: the caller's trace continued with a
 * new span id, or a new trace when the caller sent none (or a malformed one, which is ignored as
 * the W3C spec asks). With tracing on, the active span's (the request's server span, which already
 * continues the caller's trace), so the work it starts is that span's child.
 */
export function continueTrace(incoming: string | string[] | undefined): string {
  const active = activeTraceparent();
  if (active) return active;
  const header = Array.isArray(incoming) ? incoming[0] : incoming;
  const match = header ? TRACEPARENT.exec(header.trim()) : null;
  const traceId = match ? match[1] : randomTraceId();
  const flags = match ? match[3] : '01';
  return `00-${traceId}-${randomSpanId()}-${flags}`;
}

/*
 * Ids from v4 UUIDs, which Node draws from a pooled buffer of entropy: `randomBytes` made a system
 * call for each, two per submit (about 2% of the api's CPU at 500 submits/s). A UUID has 122 random
 * bits: its version digit (13th) is fixed and the 17th has 2 fixed bits, so the trace id keeps those
 * (W3C asks only its last 7 bytes to be random) and the span id takes 16 digits that are all random.
 */
function randomTraceId(): string {
  return randomUUID().replace(/-/g, '');
}

function randomSpanId(): string {
  const uuid = randomUUID(); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(24, 28);
}
