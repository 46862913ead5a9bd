/**
 * The agent socket endpoint, `/api/v1/agent`: bearer token checked at the
 * upgrade (401 and no socket, no actor, for a bad one), then the agent is
 * claimed for the new session across daemons, then a session.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { sql } from 'slonik';
import { z } from 'zod';
import { guardAuthFailures, upgradeClientIp } from '../budgets/budget-services.ts';
import { verifyAgentToken } from '../credentials/agent-tokens.ts';
import { bearerToken } from '../credentials/tokens.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { SocketRoute } from '../transport/transport.ts';
import { type AgentIdentity, AgentSession, type SessionDeps } from './agent-session.ts';

const sessionRow = z.object({ hostname: z.string(), budgets: z.unknown().nullable() });

export function agentRoute(deps: SessionDeps): SocketRoute<AgentIdentity> {
  return {
    path: '/api/v1/agent',
    async authenticate(request: IncomingMessage): Promise<AgentIdentity> {
      const address = upgradeClientIp(deps.budgets, request);
      guardAuthFailures(deps.budgets, address);
      try {
        const token = bearerToken(request.headers.authorization);
        const principal = await verifyAgentToken(deps.pool, deps.hasher, token);
        const row = await deps.pool.one(sql.type(sessionRow)`
          SELECT a.hostname, b.state AS budgets
          FROM agents a LEFT JOIN agent_budgets b ON b.agent_id = a.id
          WHERE a.id = ${principal.agentId}`);
        const sessionId = randomUUID();
        const claim = await deps.claims.claim(principal.agentId, sessionId);
        return {
          ...principal,
          hostname: row.hostname,
          storedBudgets: row.budgets,
          address,
          sessionId,
          claim,
        };
      } catch (error) {
        if (isCitadelError(error) && error.code === 'unauthorized') {
          deps.budgets.failures?.fail(address);
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
