/**
 * The feed socket endpoint, `/api/v1/feed`, for any admin role. A token in
 * the Authorization header is checked at the upgrade (401 for a bad one, 429
 * `too_many_subscribers` for one that holds as many feed sockets as it may);
 * without the header the socket opens and the first frame must authenticate.
 */
import type { IncomingMessage } from 'node:http';
import type { DatabasePool } from 'slonik';
import {
  type BudgetServices,
  guardAuthFailures,
  upgradeClientIp,
} from '../budgets/budget-services.ts';
import { type AdminPrincipal, verifyAdminToken } from '../credentials/admin-tokens.ts';
import type { Hasher } from '../credentials/hasher.ts';
import { bearerToken } from '../credentials/tokens.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { Logger } from '../log/logger.ts';
import type { SocketRoute } from '../transport/transport.ts';
import type { FeedHub } from './feed-hub.ts';
import { FeedSession } from './feed-session.ts';

export function feedRoute(deps: {
  pool: DatabasePool;
  hasher: Hasher;
  hub: FeedHub;
  budgets: BudgetServices;
  log: Logger;
}): SocketRoute<AdminPrincipal | null> {
  /** Verifies a token for an address, counting failures against its budget. */
  const verifyFrom = async (address: string, token: string | undefined) => {
    guardAuthFailures(deps.budgets, address);
    try {
      return await verifyAdminToken(deps.pool, deps.hasher, token);
    } catch (error) {
      if (isCitadelError(error) && error.code === 'unauthorized') {
        deps.budgets.failures?.fail(address);
      }
      throw error;
    }
  };
  return {
    path: '/api/v1/feed',
    async authenticate(request: IncomingMessage): Promise<AdminPrincipal | null> {
      if (request.headers.authorization === undefined) return null;
      const address = upgradeClientIp(deps.budgets, request);
      const principal = await verifyFrom(address, bearerToken(request.headers.authorization));
      if (!deps.hub.hasRoomFor(principal.tokenId)) throw new CitadelError('too_many_subscribers');
      return principal;
    },
    accept(connection, principal, request): void {
      const address = upgradeClientIp(deps.budgets, request);
      const verifyToken = (token: string) => verifyFrom(address, token);
      const feedDeps = { pool: deps.pool, hub: deps.hub, log: deps.log, verifyToken };
      new FeedSession(feedDeps, connection, principal);
    },
  };
}
