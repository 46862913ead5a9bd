/**
 * The agent socket endpoint, `/api/v1/agent`: bearer token checked at the
 * upgrade (401 and no socket, no actor, for a bad one), then a session.
 */
import type { IncomingMessage } from 'node:http';
import { sql } from 'slonik';
import { z } from 'zod';
import { verifyAgentToken } from '../credentials/agent-tokens.ts';
import { bearerToken } from '../credentials/tokens.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { SocketRoute } from '../transport/transport.ts';
import { type AgentIdentity, AgentSession, type SessionDeps } from './agent-session.ts';

export function agentRoute(deps: SessionDeps): SocketRoute<AgentIdentity> {
  return {
    path: '/api/v1/agent',
    async authenticate(request: IncomingMessage): Promise<AgentIdentity> {
      try {
        const token = bearerToken(request.headers.authorization);
        const principal = await verifyAgentToken(deps.pool, deps.hasher, token);
        const hostname = await deps.pool.oneFirst(sql.type(z.object({ hostname: z.string() }))`
          SELECT hostname FROM agents WHERE id = ${principal.agentId}`);
        return { ...principal, hostname };
      } catch (error) {
        if (isCitadelError(error) && error.code === 'unauthorized') {
          const address = request.socket.remoteAddress ?? 'unknown';
          deps.writeBehind.appendAudit({
            eventType: 'auth.failed',
            severity: 'warning',
            actor: `ip:${address}`,
            action: 'agent socket upgrade',
            result: 'failure',
            details: { source_ip: address, reason: error.details?.['reason'] ?? null },
          });
          throw new CitadelError('unauthorized');
        }
        throw error;
      }
    },
    accept(connection, identity): void {
      new AgentSession(deps, connection, identity);
    },
  };
}
