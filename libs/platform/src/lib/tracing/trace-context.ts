import { randomBytes } from 'node:crypto';
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
  const traceId = match ? match[1] : randomBytes(16).toString('hex');
  const flags = match ? match[3] : '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}
