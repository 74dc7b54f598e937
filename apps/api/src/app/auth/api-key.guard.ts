import { timingSafeEqual } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { normalizeIp, ThrottlerException } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE_KEY } from '@tasksys/platform';
import {
  ApiKeyService,
  type ApiKeyRole,
  DistributedRateLimiter,
  hashApiKey,
  type Principal,
  type RateLimitDecision,
  StreamTokens,
} from '@tasksys/tasks';
import type { ApiConfig } from '../api.config';
import { ACCEPTS_STREAM_TOKEN_KEY, type AuthenticatedRequest, REQUIRED_ROLE_KEY } from './auth.decorators';
import { retryAfterSeconds } from './shared-throttler.storage';

const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/;

/** The owner name of the ADMIN_API_KEY principal. */
export const ENV_ADMIN_OWNER = 'admin';

/** The window of RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE. */
const UNAUTHENTICATED_WINDOW_MS = 60_000;

/**
 * `Authorization: Bearer <key>` on every route not marked public: the ADMIN_API_KEY (admin) or
 * an unrevoked key from `api_keys`. 401 when missing or unknown, 403 when the role is too low.
 *
 * Known keys are the admin key and keys that authenticated in this process in the last 10
 * minutes. A request with no known key (none at all, or one to look up) first spends its client
 * address's budget, RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE across all replicas, and only then may
 * its key be looked up: past that budget it gets 429 without touching the database, so guessing
 * keys is slow and cheap. A key the lookup finds gives the budget back, so clients behind one
 * address authenticating now and then do not use it up; but while an address is over its budget,
 * keys from it that this process has not seen yet are refused with it. The address is the
 * socket's peer (`trust proxy` is off in bootstrap.ts; behind a proxy it would be the proxy's),
 * IPv6 by /64.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly adminKeyHash: Buffer | null;
  private readonly unauthenticatedLimit: number;

  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
    private readonly limiter: DistributedRateLimiter,
    config: ConfigService<ApiConfig, true>,
    private readonly streamTokens: StreamTokens,
  ) {
    const adminKey = config.get('ADMIN_API_KEY', { infer: true });
    this.adminKeyHash = adminKey ? Buffer.from(hashApiKey(adminKey), 'hex') : null;
    this.unauthenticatedLimit = config.get('RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE', { infer: true });
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE_KEY, targets)) return true;
    const http = ctx.switchToHttp();
    const req = http.getRequest<FastifyRequest & AuthenticatedRequest>();
    const token = (req.query as Record<string, unknown> | undefined)?.['token'];
    if (
      !req.headers.authorization &&
      typeof token === 'string' &&
      this.reflector.getAllAndOverride<boolean>(ACCEPTS_STREAM_TOKEN_KEY, targets)
    ) {
      const principal = await this.streamTokens.verify(token, String((req.params as { id?: unknown }).id ?? ''));
      if (!principal) {
        await this.spendAddressBudget(req, http.getResponse<FastifyReply>());
        throw new UnauthorizedException('stream token invalid, expired or for another task');
      }
      req.principal = principal;
      return true;
    }
    const match = BEARER.exec(req.headers.authorization ?? '');
    if (!match) {
      await this.spendAddressBudget(req, http.getResponse<FastifyReply>());
      throw new UnauthorizedException('Authorization header missing or malformed: expected "Bearer <key>"');
    }
    // One SHA-256 of the key per request, shared by the admin comparison and the cache.
    const hash = hashApiKey(match[1]);
    const principal =
      this.known(match[1], hash) ?? (await this.lookUp(match[1], hash, req, http.getResponse<FastifyReply>()));
    if (!principal) throw new UnauthorizedException('API key unknown or revoked');
    req.principal = principal;
    const role = this.reflector.getAllAndOverride<ApiKeyRole | undefined>(REQUIRED_ROLE_KEY, targets);
    if (role === 'admin' && principal.role !== 'admin') throw new ForbiddenException('this route needs an admin key');
    return true;
  }

  /** The principal of a key known without the database: the admin key, or one looked up lately. */
  private known(key: string, hash: string): Principal | undefined {
    if (this.adminKeyHash && timingSafeEqual(Buffer.from(hash, 'hex'), this.adminKeyHash)) {
      return { keyId: 'env', owner: ENV_ADMIN_OWNER, role: 'admin' };
    }
    return this.keys.cached(key, hash);
  }

  private async lookUp(key: string, hash: string, req: FastifyRequest, res: FastifyReply): Promise<Principal | null> {
    // Checked again (it may be revoked), but not a guess: no budget needed.
    if (this.keys.knows(key, hash)) return this.keys.authenticate(key);
    const spent = await this.spendAddressBudget(req, res);
    const principal = await this.keys.authenticate(key);
    if (principal) this.limiter.refund(spent);
    return principal;
  }

  /** One request from the client's address against its budget; 429 (with Retry-After) past it. */
  private async spendAddressBudget(req: FastifyRequest, res: FastifyReply): Promise<RateLimitDecision> {
    const address = normalizeIp(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    const decision = await this.limiter.hit(
      `unauthenticated:ip:${address}`,
      this.unauthenticatedLimit,
      UNAUTHENTICATED_WINDOW_MS,
    );
    if (!decision.allowed) {
      res.header('Retry-After', String(retryAfterSeconds(decision.retryAfterMs)));
      throw new ThrottlerException();
    }
    return decision;
  }
}
