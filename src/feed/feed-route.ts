/**
 * The feed socket endpoint, `/api/v1/feed`, for any admin role. A token in
 * the Authorization header is checked at the upgrade (401 for a bad one);
 * without the header the socket opens and the first frame must authenticate.
 */
import type { IncomingMessage } from 'node:http';
import type { DatabasePool } from 'slonik';
import { type AdminPrincipal, verifyAdminToken } from '../credentials/admin-tokens.ts';
import type { Hasher } from '../credentials/hasher.ts';
import { bearerToken } from '../credentials/tokens.ts';
import type { Logger } from '../log/logger.ts';
import type { SocketRoute } from '../transport/transport.ts';
import type { FeedHub } from './feed-hub.ts';
import { FeedSession } from './feed-session.ts';

export function feedRoute(deps: {
  pool: DatabasePool;
  hasher: Hasher;
  hub: FeedHub;
  log: Logger;
}): SocketRoute<AdminPrincipal | null> {
  const verifyToken = (token: string) => verifyAdminToken(deps.pool, deps.hasher, token);
  return {
    path: '/api/v1/feed',
    async authenticate(request: IncomingMessage): Promise<AdminPrincipal | null> {
      if (request.headers.authorization === undefined) return null;
      return verifyAdminToken(deps.pool, deps.hasher, bearerToken(request.headers.authorization));
    },
    accept(connection, principal): void {
      new FeedSession(
        { pool: deps.pool, hub: deps.hub, log: deps.log, verifyToken },
        connection,
        principal,
      );
    },
  };
}
