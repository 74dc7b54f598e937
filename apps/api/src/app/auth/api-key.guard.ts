import { timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { PUBLIC_ROUTE_KEY } from '@tasksys/platform';
import { ApiKeyService, type ApiKeyRole, hashApiKey, type Principal } from '@tasksys/tasks';
import type { Request } from 'express';
import type { ApiConfig } from '../api.config';
import { type AuthenticatedRequest, REQUIRED_ROLE_KEY } from './auth.decorators';

const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/;

/** The owner name of the ADMIN_API_KEY principal. */
export const ENV_ADMIN_OWNER = 'admin';

/**
 * `Authorization: Bearer <key>` on every route not marked public: the ADMIN_API_KEY (admin) or
 * an unrevoked key from `api_keys`. 401 when missing or unknown, 403 when the role is too low.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly adminKeyHash: Buffer | null;

  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
    config: ConfigService<ApiConfig, true>,
  ) {
    const adminKey = config.get('ADMIN_API_KEY', { infer: true });
    this.adminKeyHash = adminKey ? Buffer.from(hashApiKey(adminKey), 'hex') : null;
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE_KEY, targets)) return true;
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    const match = BEARER.exec(req.headers.authorization ?? '');
    if (!match) throw new UnauthorizedException('Authorization header missing or malformed: expected "Bearer <key>"');
    const principal = await this.authenticate(match[1]);
    if (!principal) throw new UnauthorizedException('API key unknown or revoked');
    req.principal = principal;
    const role = this.reflector.getAllAndOverride<ApiKeyRole | undefined>(REQUIRED_ROLE_KEY, targets);
    if (role === 'admin' && principal.role !== 'admin') throw new ForbiddenException('this route needs an admin key');
    return true;
  }

  private async authenticate(key: string): Promise<Principal | null> {
    if (this.adminKeyHash && timingSafeEqual(Buffer.from(hashApiKey(key), 'hex'), this.adminKeyHash)) {
      return { keyId: 'env', owner: ENV_ADMIN_OWNER, role: 'admin' };
    }
    return this.keys.authenticate(key);
  }
}
