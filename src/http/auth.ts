/**
 * Admin authentication for the HTTP API: a bearer admin token, verified per
 * request, and the role each route needs. Missing or bad credentials → 401;
 * a role too low → 403. Failed attempts are audited with the source address.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { guardAuthFailures } from '../budgets/budget-services.ts';
import { type AdminPrincipal, hasRole, verifyAdminToken } from '../credentials/admin-tokens.ts';
import { bearerToken } from '../credentials/tokens.ts';
import type { AdminRole } from '../database/rows.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { HttpDeps } from './deps.ts';

declare module 'fastify' {
  interface FastifyRequest {
    admin: AdminPrincipal | undefined;
  }
}

export function requireRole(deps: HttpDeps, role: AdminRole) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    let principal: AdminPrincipal;
    guardAuthFailures(deps.budgets, request.ip);
    try {
      principal = await verifyAdminToken(
        deps.pool,
        deps.hasher,
        bearerToken(request.headers.authorization),
      );
    } catch (error) {
      if (isCitadelError(error) && error.code === 'unauthorized') {
        deps.budgets.failures?.fail(request.ip);
        deps.writeBehind.appendAudit({
          eventType: 'auth.failed',
          severity: 'warning',
          actor: `ip:${request.ip}`,
          action: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
          result: 'failure',
          details: { source_ip: request.ip, reason: error.details?.['reason'] ?? null },
        });
        throw new CitadelError('unauthorized');
      }
      throw error;
    }
    if (!hasRole(principal, role)) {
      throw new CitadelError('forbidden', { details: { needed: role, held: principal.role } });
    }
    request.admin = principal;
  };
}
