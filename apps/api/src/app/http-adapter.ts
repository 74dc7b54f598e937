import { FastifyAdapter } from '@nestjs/platform-fastify';
import { bodyLimitBytes } from './errors/json-body';

/**
 * The api's HTTP server: Fastify under Nest. At 500 single submits/s express, its router and
 * body-parser took about 20% of the api's CPU (1.5-2 ms per submit in all, bench/RESULTS.md).
 * Routing as express did it: no case or trailing-slash distinctions, no proxy trusted (`req.ip` is
 * the socket's peer: the rate limit of unauthenticated requests is per that address).
 */
export function createHttpAdapter(bodyLimit = '256kb'): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: bodyLimitBytes(bodyLimit),
    trustProxy: false,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true },
    // Node closes an idle keep-alive connection after 5 s, and a client (or load balancer) that
    // sends on it at that moment gets ECONNRESET (seen in the bench at 500 submits/s). Idle
    // connections stay open longer than common proxies keep theirs (60 s), so the client closes first.
    keepAliveTimeout: 65_000,
  });
}
