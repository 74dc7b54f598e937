import { SetMetadata } from '@nestjs/common';

/** Metadata key marking a route that needs no credentials (health, metrics). Apps' auth guards honour it. */
export const PUBLIC_ROUTE_KEY = 'tasksys:public-route';

/** Marks a controller or handler as reachable without credentials (and without a rate limit). */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE_KEY, true);
