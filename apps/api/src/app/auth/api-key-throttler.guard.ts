import { type ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { PUBLIC_ROUTE_KEY } from '@tasksys/platform';
import type { AuthenticatedRequest } from './auth.decorators';

/**
 * Rate limit per API key (not per IP: many clients share NATs, one client may use many IPs), one
 * budget for the whole deployment (SharedThrottlerStorage). Runs after ApiKeyGuard, which limits
 * requests without a valid key per client address itself, before their key is looked up; public
 * routes are exempt. Over the limit: 429 with `Retry-After` (seconds).
 */
@Injectable()
export class ApiKeyThrottlerGuard extends ThrottlerGuard {
  protected override async shouldSkip(ctx: ExecutionContext): Promise<boolean> {
    return this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE_KEY, [ctx.getHandler(), ctx.getClass()]) ?? false;
  }

  /** One budget per key across all routes (the default is per route and handler). */
  protected override generateKey(_ctx: ExecutionContext, tracker: string, throttlerName: string): string {
    return `${throttlerName}:${tracker}`;
  }

  protected override async getTracker(req: Record<string, any>): Promise<string> {
    const principal = (req as AuthenticatedRequest).principal;
    return principal ? `key:${principal.keyId}` : `ip:${req['ip']}`;
  }
}
