import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { ApiKeyRole, Principal } from '@tasksys/tasks';

export const REQUIRED_ROLE_KEY = 'tasksys:required-role';

/** Restricts a route (or controller) to keys with this role; others get 403. */
export const RequireRole = (role: ApiKeyRole) => SetMetadata(REQUIRED_ROLE_KEY, role);

export const ACCEPTS_STREAM_TOKEN_KEY = 'tasksys:accepts-stream-token';

/** The route also accepts `?token=` (a stream token of the `:id` task) in place of the Authorization header. */
export const AcceptsStreamToken = () => SetMetadata(ACCEPTS_STREAM_TOKEN_KEY, true);

export type AuthenticatedRequest = { principal?: Principal };

/** The caller, as authenticated by ApiKeyGuard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on a route without ApiKeyGuard');
  return principal;
});

/** Tasks a principal may see and act on: their own, or everyone's for admins. */
export function ownerScope(p: Principal): string | null {
  return p.role === 'admin' ? null : p.owner;
}

/** The actor recorded in task_events. */
export function actorOf(p: Principal): string {
  return `${p.role === 'admin' ? 'admin' : 'owner'}:${p.owner}`;
}
