/**
 * `{"type":"refresh"}`: a new token for the agent, answered with
 * `{"type":"token"}`. The old token stays valid for a grace period (so that a
 * refresh racing a reconnect cannot lock the agent out), then expires. The new
 * token, the old one's shortened life and the audit rows commit together.
 *
 * A refresh racing a revocation must not hand out a token that survives it:
 * the transaction locks the agent's row the way revocations wait for (see
 * `lockAgentForTokenIssue`), then checks, in a statement of its own, that the
 * session's token is still live. Revoked, the session is closed with 4401.
 */
import { sql } from 'slonik';
import { prepareAgentToken, storeAgentToken } from '../../credentials/agent-tokens.ts';
import { insertAuditEvents } from '../../database/queries/audit.ts';
import { isAgentTokenLive, lockAgentForTokenIssue } from '../../database/queries/credentials.ts';
import { CitadelError, isCitadelError } from '../../errors/catalogue.ts';
import type { AgentSession } from '../agent-session.ts';
import { closeCodes } from '../close-codes.ts';

/** How long a token stays valid after the agent refreshed it. */
export const refreshGraceMs = 5 * 60_000;

export async function handleRefresh(session: AgentSession): Promise<void> {
  const { pool, hasher, clock } = session.deps;
  if (!session.spend('refresh')) return;
  const previousTokenId = session.tokenId;
  try {
    const prepared = await prepareAgentToken(hasher);
    const nowMs = clock.now();
    const issued = await pool.transaction(async (tx) => {
      await lockAgentForTokenIssue(tx, session.agentId);
      if (!(await isAgentTokenLive(tx, previousTokenId))) {
        throw new CitadelError('unauthorized', { details: { reason: 'revoked' } });
      }
      const token = await storeAgentToken(
        tx,
        prepared,
        session.agentId,
        nowMs,
        session.deps.agentTokenTtlMs,
      );
      const graceEnds = new Date(nowMs + refreshGraceMs).toISOString();
      await tx.query(sql.unsafe`
        UPDATE agent_tokens SET expires_at = LEAST(expires_at, ${graceEnds}::timestamptz)
        WHERE id = ${previousTokenId}`);
      await insertAuditEvents(tx, [
        {
          agentId: session.agentId,
          eventType: 'token.refreshed',
          severity: 'info',
          actor: `agent:${session.agentId}`,
          action: 'refresh agent token',
          result: 'success',
          details: { token_id: token.tokenId, previous_token_id: previousTokenId },
        },
      ]);
      return token;
    });
    session.tokenId = issued.tokenId;
    session.actor?.send({ type: 'TOKEN_REFRESHED', expiresAtMs: Date.parse(issued.expiresAt) });
    session.send({ type: 'token', token: issued.token, expires_at: issued.expiresAt });
    session.log.info({ tokenId: issued.tokenId }, 'token:refreshed');
  } catch (error) {
    const known = isCitadelError(error) ? error : undefined;
    if (known?.code === 'unauthorized') {
      session.log.info(
        { tokenId: previousTokenId },
        'token:refresh-refused, the token was revoked',
      );
      session.close(closeCodes.tokenInvalid, 'token revoked');
      return;
    }
    session.log.error({ err: error }, 'token:refresh-failed');
    session.send({
      type: 'error',
      code: known?.code ?? 'storage_unavailable',
      message: known?.message ?? 'the token could not be refreshed; try again later',
      retry_after_ms: known?.retryAfterMs ?? 5_000,
    });
  }
}
