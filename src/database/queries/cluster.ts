/**
 * What daemons sharing one database say to each other through it: instance
 * leases and their sweep, agent session claims, and the notifications of
 * revocations. Every time comparison uses the database's clock, so clock
 * skew between daemon hosts does not matter.
 */
import { type CommonQueryMethods, type FragmentSqlToken, sql } from 'slonik';
import { z } from 'zod';
import { channels } from '../../cluster/channels.ts';

/** Registers (or re-registers) a daemon with a lease of `leaseMs`. */
export async function registerInstance(
  db: CommonQueryMethods,
  instance: { id: string; node: string; hostname: string; pid: number; leaseMs: number },
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO daemon_instances (id, node, hostname, pid, lease_expires_at)
    VALUES (${instance.id}, ${instance.node}, ${instance.hostname}, ${instance.pid},
      now() + make_interval(secs => ${instance.leaseMs / 1_000}))
    ON CONFLICT (id) DO UPDATE SET renewed_at = now(),
      lease_expires_at = EXCLUDED.lease_expires_at`);
}

/** Extends the lease; false when the row is gone (another daemon swept it). */
export async function renewLease(
  db: CommonQueryMethods,
  id: string,
  leaseMs: number,
): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE daemon_instances
    SET renewed_at = now(), lease_expires_at = now() + make_interval(secs => ${leaseMs / 1_000})
    WHERE id = ${id}`);
  return result.rowCount > 0;
}

const sweptRow = z.object({ daemons: z.number(), agents: z.number() });

/**
 * Drops the instances that `which` selects, with their session claims, and
 * marks offline the agents whose newest session one of them held. Several
 * daemons may sweep at once: the row locks of the DELETE let one of them do it.
 */
async function sweep(
  db: CommonQueryMethods,
  which: FragmentSqlToken,
): Promise<{ daemons: number; agents: number }> {
  return db.one(sql.type(sweptRow)`
    WITH dead AS (
      DELETE FROM daemon_instances WHERE ${which} RETURNING id
    ), released AS (
      DELETE FROM agent_sessions s USING dead WHERE s.daemon_id = dead.id RETURNING s.agent_id
    ), offline AS (
      UPDATE agents SET status = 'offline'
      WHERE id IN (SELECT agent_id FROM released) AND status <> 'offline'
      RETURNING id
    )
    SELECT (SELECT count(*) FROM dead)::int AS daemons,
      (SELECT count(*) FROM offline)::int AS agents`);
}

/** Sweeps every other daemon whose lease has expired. */
export function sweepExpiredInstances(db: CommonQueryMethods, selfId: string) {
  return sweep(db, sql.fragment`lease_expires_at < now() AND id <> ${selfId}`);
}

/** Sweeps the earlier lives of this daemon (same node), whatever their lease. */
export function sweepEarlierLives(db: CommonQueryMethods, selfId: string, node: string) {
  return sweep(db, sql.fragment`node = ${node} AND id <> ${selfId}`);
}

/** Sweeps this daemon itself at a graceful stop. */
export function sweepSelf(db: CommonQueryMethods, selfId: string) {
  return sweep(db, sql.fragment`id = ${selfId}`);
}

/**
 * Marks offline the agents that no daemon holds a session of. A live session
 * always has its claim row, so these are leftovers: of a database used before
 * claims existed, or of a sweep that raced a status write.
 */
export async function sweepUnclaimedAgents(db: CommonQueryMethods): Promise<number> {
  const result = await db.query(sql.unsafe`
    UPDATE agents a SET status = 'offline'
    WHERE a.status <> 'offline'
      AND NOT EXISTS (SELECT 1 FROM agent_sessions s WHERE s.agent_id = a.id)`);
  return result.rowCount;
}

const claimRow = z.object({ claim: z.number(), notified: z.unknown() });

/**
 * Records that the agent's newest session is `sessionId` on this daemon and
 * tells every daemon (`citadel_sessions`), in one statement. The claim number
 * is drawn under the row's lock, so a later claim always has a higher number.
 */
export async function claimSession(
  db: CommonQueryMethods,
  claim: { agentId: string; sessionId: string; daemonId: string },
): Promise<number> {
  const row = await db.one(sql.type(claimRow)`
    WITH claimed AS (
      INSERT INTO agent_sessions (agent_id, daemon_id, session_id, claim)
      VALUES (${claim.agentId}, ${claim.daemonId}, ${claim.sessionId},
        nextval('agent_session_claim_seq'))
      ON CONFLICT (agent_id) DO UPDATE SET daemon_id = EXCLUDED.daemon_id,
        session_id = EXCLUDED.session_id, claim = nextval('agent_session_claim_seq'),
        claimed_at = now()
      RETURNING claim
    )
    SELECT claim, pg_notify(${channels.sessions}, json_build_object(
      'agent', ${claim.agentId}::text, 'session', ${claim.sessionId}::text,
      'daemon', ${claim.daemonId}::text, 'claim', claim)::text) AS notified
    FROM claimed`);
  return row.claim;
}

const claimHolder = z.object({
  agent_id: z.string(),
  session_id: z.string(),
  daemon_id: z.string(),
  claim: z.number(),
});
export type ClaimHolder = z.infer<typeof claimHolder>;

/** The current claims of these agents, for catching up after a lost LISTEN. */
export async function currentClaims(
  db: CommonQueryMethods,
  agentIds: readonly string[],
): Promise<readonly ClaimHolder[]> {
  if (agentIds.length === 0) return [];
  return db.any(sql.type(claimHolder)`
    SELECT agent_id, session_id, daemon_id, claim FROM agent_sessions
    WHERE agent_id = ANY(${sql.array(agentIds, 'uuid')})`);
}

const idRow = z.object({ id: z.string() });

/** Of these agent tokens, the ones no longer valid (revoked or expired). */
export async function deadAgentTokens(
  db: CommonQueryMethods,
  tokenIds: readonly string[],
): Promise<ReadonlySet<string>> {
  if (tokenIds.length === 0) return new Set();
  const live = await db.anyFirst(sql.type(idRow)`
    SELECT id FROM agent_tokens
    WHERE id = ANY(${sql.array(tokenIds, 'uuid')}) AND NOT is_revoked AND expires_at > now()`);
  return new Set(tokenIds.filter((id) => !live.includes(id)));
}

/** Of these admin tokens, the ones no longer valid (revoked or expired). */
export async function deadAdminTokens(
  db: CommonQueryMethods,
  tokenIds: readonly string[],
): Promise<ReadonlySet<string>> {
  if (tokenIds.length === 0) return new Set();
  const live = await db.anyFirst(sql.type(idRow)`
    SELECT id FROM admin_tokens
    WHERE id = ANY(${sql.array(tokenIds, 'uuid')})
      AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`);
  return new Set(tokenIds.filter((id) => !live.includes(id)));
}

/**
 * Tells every daemon that an agent's tokens were revoked; delivered when the
 * caller's transaction commits. The daemon holding the session checks its
 * token before closing it, so a fresh token issued alongside is left alone.
 */
export async function notifyAgentRevoked(db: CommonQueryMethods, agentId: string): Promise<void> {
  const payload = JSON.stringify({ agent: agentId });
  await db.query(sql.unsafe`SELECT pg_notify(${channels.revocations}, ${payload})`);
}

/** Tells every daemon that an admin token was revoked (on commit). */
export async function notifyAdminTokenRevoked(
  db: CommonQueryMethods,
  tokenId: string,
): Promise<void> {
  const payload = JSON.stringify({ admin_token: tokenId });
  await db.query(sql.unsafe`SELECT pg_notify(${channels.revocations}, ${payload})`);
}
