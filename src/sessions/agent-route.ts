/**
 * The agent socket endpoint, `/api/v1/agent`: bearer token checked at the
 * upgrade (401 and no socket, no actor, for a bad one), then the agent is
 * claimed for the new session across daemons, then a session. Two round
 * trips: the token with the agent's row, then the claim.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { guardAuthFailures, upgradeClientIp } from '../budgets/budget-services.ts';
import { verifyAgentToken } from '../credentials/agent-tokens.ts';
import { bearerToken } from '../credentials/tokens.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { SocketRoute } from '../transport/transport.ts';
import { type AgentIdentity, AgentSession, type SessionDeps } from './agent-session.ts';

export function agentRoute(deps: SessionDeps): SocketRoute<AgentIdentity> {
  return {
    path: '/api/v1/agent',
    async authenticate(request: IncomingMessage): Promise<AgentIdentity> {
      const address = upgradeClientIp(deps.budgets, request);
      guardAuthFailures(deps.budgets, address);
      try {
        const token = bearerToken(request.headers.authorization);
        const tokenReadAtMs = deps.clock.monotonicMs();
        const verified = await whileConnected(request, (signal) =>
          verifyAgentToken(deps.pool, deps.hasher, token, signal),
        );
        const sessionId = randomUUID();
        const claim = await deps.claims.claim(verified.agentId, sessionId);
        return { ...verified, address, sessionId, claim, tokenReadAtMs };
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

/**
 * Runs `check` with a signal that aborts if the client's socket closes
 * meanwhile (its bcrypt compare need not run any more); the listener is
 * removed afterwards, so an accepted socket keeps nothing of it.
 */
async function whileConnected<T>(
  request: IncomingMessage,
  check: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onClose = () => controller.abort(new Error('client gone'));
  if (request.socket.destroyed) onClose();
  else request.socket.once('close', onClose);
  try {
    return await check(controller.signal);
  } finally {
    request.socket.off('close', onClose);
  }
}
