/**
 * Enrollment: an agent presents an enrollment secret and its identity and
 * receives a token. A known identity (machine id, else hostname) keeps its
 * agent id; its older tokens are revoked and the act is audited as a
 * re-enrollment. The secret's use, the agent row, the token and the audit
 * rows commit in one transaction.
 */
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { upsertAgent } from '../database/queries/agents.ts';
import { insertAuditEvents } from '../database/queries/audit.ts';
import { notifyAgentRevoked } from '../database/queries/cluster.ts';
import {
  findEnrollmentSecret,
  insertEnrollmentSecret,
  lockAgentForRevocation,
  revokeAgentTokens,
  spendEnrollmentSecret,
} from '../database/queries/credentials.ts';
import { CitadelError } from '../errors/catalogue.ts';
import { type IssuedToken, issueAgentToken } from './agent-tokens.ts';
import type { Hasher } from './hasher.ts';
import { issueCredential, parseCredential } from './tokens.ts';

export interface EnrollmentRequest {
  readonly hostname: string;
  readonly machineId: string | undefined;
  readonly secret: string;
  readonly ipAddress: string;
}

export interface Enrollment extends IssuedToken {
  readonly agentId: string;
  readonly reenrolled: boolean;
}

export async function enroll(
  pool: DatabasePool,
  hasher: Hasher,
  request: EnrollmentRequest,
  nowMs: number,
  ttlMs: number,
): Promise<Enrollment> {
  const parsed = parseCredential('enrollmentSecret', request.secret);
  if (!parsed) throw new CitadelError('enrollment_refused', { details: { reason: 'malformed' } });
  const row = await findEnrollmentSecret(pool, parsed.id);
  if (!row) throw new CitadelError('enrollment_refused', { details: { reason: 'unknown' } });
  if (!(await hasher.verify(parsed.secret, row.secret_hash))) {
    throw new CitadelError('enrollment_refused', { details: { reason: 'mismatch' } });
  }
  if (!row.usable) throw new CitadelError('enrollment_refused', { details: { reason: 'spent' } });

  return pool.transaction(async (tx) => {
    if (!(await spendEnrollmentSecret(tx, parsed.id))) {
      throw new CitadelError('enrollment_refused', { details: { reason: 'spent' } });
    }
    const agent = await upsertAgent(tx, request);
    // A known agent: wait for a token being refreshed for it, so that it is revoked too.
    if (!agent.created) await lockAgentForRevocation(tx, agent.id);
    const revoked = agent.created ? 0 : await revokeAgentTokens(tx, agent.id, null);
    if (revoked > 0) await notifyAgentRevoked(tx, agent.id);
    const issued = await issueAgentToken(tx, hasher, agent.id, nowMs, ttlMs);
    await insertAuditEvents(tx, [
      {
        agentId: agent.id,
        eventType: agent.created ? 'agent.enrolled' : 'agent.reenrolled',
        severity: agent.created ? 'info' : 'warning',
        actor: `enrollment-secret:${parsed.id}`,
        action: agent.created ? 'enroll' : 're-enroll',
        result: 'success',
        details: {
          hostname: request.hostname,
          machine_id: request.machineId ?? null,
          source_ip: request.ipAddress,
          revoked_tokens: revoked,
        },
      },
      {
        agentId: agent.id,
        eventType: 'token.issued',
        severity: 'info',
        actor: 'system',
        action: 'issue agent token',
        result: 'success',
        details: { token_id: issued.tokenId, expires_at: issued.expiresAt },
      },
    ]);
    return { agentId: agent.id, reenrolled: !agent.created, ...issued };
  });
}

export async function createEnrollmentSecret(
  db: CommonQueryMethods,
  hasher: Hasher,
  request: { createdBy: string; maxUses: number | null; expiresAt: string | null },
): Promise<{ id: string; secret: string }> {
  const credential = issueCredential('enrollmentSecret');
  const hash = await hasher.hash(credential.secret);
  await insertEnrollmentSecret(db, { id: credential.id, hash, ...request });
  return { id: credential.id, secret: credential.text };
}
