import { Injectable, type NestMiddleware, UnsupportedMediaTypeException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { RequestValidationError } from './request-validation.error';

/** A request that carries a body must carry a JSON object: anything else would reach validation as "no body" (415 instead) or as oddly named fields. */
@Injectable()
export class RequireJsonMiddleware implements NestMiddleware {
  use(req: Request, _res: Response, next: NextFunction): void {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) {
      throw new UnsupportedMediaTypeException('body: Content-Type must be application/json');
    }
    // express.json accepts arrays too; every body of this api is an object.
    if (hasBody && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
      throw new RequestValidationError('body', 'body must be a JSON object');
    }
    // PostgreSQL text and jsonb cannot hold U+0000: refuse it here, naming the field, not as a 500 later.
    const nul = findNul(req.query, 'query') ?? (hasBody ? findNul(req.body, 'body') : null);
    if (nul) throw new RequestValidationError(nul, `${nul} must not contain the NUL character (\\u0000)`);
    next();
  }
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
