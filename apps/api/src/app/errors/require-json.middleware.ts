import { Injectable, type NestMiddleware, UnsupportedMediaTypeException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { RequestValidationError } from './api.errors';

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
    next();
  }
}
