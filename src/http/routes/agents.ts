/** The fleet, for viewers; revocation, for admins. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf } from '../../credentials/admin-tokens.ts';
import { findAgent, listAgents } from '../../database/queries/agents.ts';
import { insertAuditEvents } from '../../database/queries/audit.ts';
import { notifyAgentRevoked } from '../../database/queries/cluster.ts';
import { lockAgentForRevocation, revokeAgentTokens } from '../../database/queries/credentials.ts';
import { agentStatuses } from '../../database/rows.ts';
import { CitadelError } from '../../errors/catalogue.ts';
import { closeCodes } from '../../sessions/close-codes.ts';
import { requireRole } from '../auth.ts';
import type { HttpDeps } from '../deps.ts';
import { parseInput } from '../validation.ts';

const listQuery = z.strictObject({
  status: z.enum(agentStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(500),
});
const idParams = z.strictObject({ id: z.uuid() });

export function registerAgentRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/api/v1/agents', { preHandler: requireRole(deps, 'viewer') }, async (request) => {
    const query = parseInput(listQuery, request.query);
    return { items: await listAgents(deps.pool, query) };
  });

  app.get('/api/v1/agents/:id', { preHandler: requireRole(deps, 'viewer') }, async (request) => {
    const { id } = parseInput(idParams, request.params);
    const agent = await findAgent(deps.pool, id);
    if (!agent) throw new CitadelError('not_found');
    return agent;
  });

  app.post(
    '/api/v1/agents/:id/revoke',
    { preHandler: requireRole(deps, 'admin') },
    async (request) => {
      const { id } = parseInput(idParams, request.params);
      const admin = request.admin!;
      const revoked = await deps.pool.transaction(async (tx) => {
        // Waits for a token being issued to the agent, so that it is revoked too.
        if (!(await lockAgentForRevocation(tx, id))) throw new CitadelError('not_found');
        const count = await revokeAgentTokens(tx, id, null);
        await notifyAgentRevoked(tx, id);
        await insertAuditEvents(tx, [
          {
            agentId: id,
            eventType: 'agent.revoked',
            severity: 'warning',
            actor: actorOf(admin),
            action: 'revoke agent tokens',
            result: 'success',
            details: { revoked_tokens: count, source_ip: request.ip },
          },
        ]);
        return count;
      });
      deps.registry.get(id)?.close(closeCodes.tokenInvalid, 'token revoked');
      return { agent_id: id, revoked_tokens: revoked };
    },
  );
}
