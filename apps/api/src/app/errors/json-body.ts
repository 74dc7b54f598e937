import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MalformedJsonError, RequestValidationError } from './request-validation.error';

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

/** BODY_LIMIT (`256kb`, `1mb`, `500b`: validated by api.config.ts) in bytes. */
export function bodyLimitBytes(limit: string): number {
  const match = /^(\d+)(b|kb|mb)$/i.exec(limit);
  if (!match) throw new Error(`not a body size: ${limit}`);
  return Number(match[1]) * UNITS[match[2].toLowerCase()];
}

/**
 * JSON is the only body this api takes: Fastify answers any other Content-Type with 415 (the
 * exception filter words it), bodies over BODY_LIMIT with 413, malformed JSON with 400. A JSON
 * body that is not an object, and U+0000 anywhere in the query or the body, are refused before
 * guards and validation run, naming the field (PostgreSQL text and jsonb cannot hold U+0000).
 */
export function registerJsonBodies(fastify: FastifyInstance, limit: string): void {
  fastify.removeAllContentTypeParsers();
  const parse = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: bodyLimitBytes(limit) },
    (req, body, done) => {
      // An empty body with a JSON Content-Type is no body (as with express), not an error.
      if (body.length === 0) return done(null, undefined);
      // Nest would turn Fastify's error into a bare 400; ours carries the code REQUEST.MALFORMED_JSON.
      parse(req, body as string, (err, value) => (err ? done(new MalformedJsonError(), undefined) : done(null, value)));
    },
  );
  fastify.addHook('preValidation', async (req: FastifyRequest) => checkJsonRequest(req));
}

/** @internal The checks of a parsed request: exported for its unit test. */
export function checkJsonRequest(req: Pick<FastifyRequest, 'headers' | 'query' | 'body'>): void {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  const body = req.body;
  if (hasBody && body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
    throw new RequestValidationError('body', 'body must be a JSON object');
  }
  const nul = findNul(req.query, 'query') ?? (body !== undefined ? findNul(body, 'body') : null);
  if (nul) throw new RequestValidationError(nul, `${nul} must not contain the NUL character (\\u0000)`);
}

/** Path of the first string (or key) holding U+0000, or null. Bodies are size-limited, so the walk is bounded. */
function findNul(value: unknown, path: string): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, inner] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : path === 'body' ? key : `${path}.${key}`;
    if (key.includes('\u0000')) return at;
    const found = findNul(inner, at);
    if (found) return found;
  }
  return null;
}
