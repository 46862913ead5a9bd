/**
 * One session per agent across every daemon. Before a session opens, its
 * daemon claims the agent in `agent_sessions`, which draws a claim number
 * and notifies `citadel_sessions`. Each daemon, on hearing of a claim, closes
 * with 4409 its own session of that agent if that session's claim is lower.
 * Claims heard of are remembered for a while, so that a session whose socket
 * finishes opening after a newer claim was heard of is refused at once.
 *
 * Revocations travel the same way (`citadel_revocations`): the daemon holding
 * the agent's session checks the session's token in the database and closes
 * it with 4401 when the token is no longer valid; admin tokens close the
 * feed sockets opened with them. A revocation heard while a session of the
 * agent was still being opened (its token already read, its session not yet
 * registered) is remembered too: the session, once registered, has its token
 * checked again (`recheckIfRevokedSince`).
 */
import type { DatabasePool } from 'slonik';
import type { Clock } from '../clock/clock.ts';
import {
  claimSession,
  currentClaims,
  deadAdminTokens,
  deadAgentTokens,
} from '../database/queries/cluster.ts';
import type { FeedHub } from '../feed/feed-hub.ts';
import type { Logger } from '../log/logger.ts';
import { closeCodes } from '../sessions/close-codes.ts';
import type { LiveSession, SessionRegistry } from '../sessions/registry.ts';
import type { RevocationPayload, SessionPayload } from './channels.ts';

/** How long a claim or revocation heard of is remembered: longer than a socket takes to open. */
export const rememberClaimsMs = 60_000;

export interface SessionClaimsOptions {
  readonly pool: DatabasePool;
  readonly daemonId: string;
  readonly registry: SessionRegistry;
  readonly hub: Pick<FeedHub, 'closeToken' | 'trackedTokenIds'>;
  readonly clock: Clock;
  readonly log: Logger;
}

export class SessionClaims {
  readonly #options: SessionClaimsOptions;
  readonly #heard = new Map<string, { claim: number; atMs: number }>();
  /** Agents whose tokens a revocation notification named, and when it was heard. */
  readonly #revoked = new Map<string, number>();

  constructor(options: SessionClaimsOptions) {
    this.#options = options;
  }

  /** Claims the agent for a session about to open here; returns the claim number. */
  claim(agentId: string, sessionId: string): Promise<number> {
    const { pool, daemonId } = this.#options;
    return claimSession(pool, { agentId, sessionId, daemonId });
  }

  /** Whether a newer session of the agent was claimed (anywhere) than `claim`. */
  isSuperseded(agentId: string, claim: number): boolean {
    const heard = this.#heard.get(agentId);
    return heard !== undefined && heard.claim > claim;
  }

  /** A claim notification: closes an older session of the agent held here. */
  onClaimed(payload: SessionPayload): void {
    const previous = this.#heard.get(payload.agent);
    if (!previous || previous.claim < payload.claim) {
      this.#heard.set(payload.agent, {
        claim: payload.claim,
        atMs: this.#options.clock.monotonicMs(),
      });
    }
    this.#closeIfOlder(payload.agent, payload.session, payload.claim);
  }

  /** A revocation notification. */
  async onRevoked(payload: RevocationPayload): Promise<void> {
    if ('admin_token' in payload) {
      this.#options.hub.closeToken(payload.admin_token);
      return;
    }
    this.#revoked.set(payload.agent, this.#options.clock.monotonicMs());
    const session = this.#options.registry.get(payload.agent);
    if (session) await this.#recheck(session);
  }

  /**
   * For a session just registered whose token was read at `sinceMs`: if a
   * revocation of its agent was heard since, checks its token again.
   */
  async recheckIfRevokedSince(session: LiveSession, sinceMs: number): Promise<void> {
    const heardAt = this.#revoked.get(session.agentId);
    // Revocations heard of are forgotten after a while: an opening slower
    // than that is checked again whatever was heard.
    const slow = this.#options.clock.monotonicMs() - sinceMs >= rememberClaimsMs;
    if (!slow && (heardAt === undefined || heardAt < sinceMs)) return;
    await this.#recheck(session);
  }

  async #recheck(session: LiveSession): Promise<void> {
    try {
      await this.#closeDeadTokens([session.tokenId]);
    } catch (error) {
      // Unable to check: the agent reconnects, and its token is checked at the upgrade.
      this.#options.log.error(
        { err: error, agentId: session.agentId },
        'cluster:revocation-check-failed',
      );
      session.close(closeCodes.restarting, 'reconnect; reconnect_after_ms=1000');
    }
  }

  /**
   * After the LISTEN connection was lost: compares every session held here
   * with the claims table and every token in use here with the token tables.
   */
  async resync(): Promise<void> {
    const sessions = [...this.#options.registry.all()];
    const claims = await currentClaims(
      this.#options.pool,
      sessions.map((s) => s.agentId),
    );
    for (const holder of claims) {
      this.#closeIfOlder(holder.agent_id, holder.session_id, holder.claim);
    }
    await this.#closeDeadTokens(sessions.map((s) => s.tokenId));
    const adminTokens = this.#options.hub.trackedTokenIds();
    const deadAdmin = await deadAdminTokens(this.#options.pool, adminTokens);
    for (const tokenId of deadAdmin) this.#options.hub.closeToken(tokenId);
  }

  /** Forgets claims heard of long ago. */
  prune(): void {
    const oldest = this.#options.clock.monotonicMs() - rememberClaimsMs;
    for (const [agentId, heard] of this.#heard) {
      if (heard.atMs < oldest) this.#heard.delete(agentId);
    }
    for (const [agentId, atMs] of this.#revoked) {
      if (atMs < oldest) this.#revoked.delete(agentId);
    }
  }

  #closeIfOlder(agentId: string, sessionId: string, claim: number): void {
    const local = this.#options.registry.get(agentId);
    if (!local || local.sessionId === sessionId || local.claim >= claim) return;
    this.#options.log.info(
      { agentId, sessionId: local.sessionId, newerSessionId: sessionId },
      'cluster:session-replaced elsewhere',
    );
    local.close(closeCodes.replaced, 'replaced by a newer session');
  }

  async #closeDeadTokens(tokenIds: readonly string[]): Promise<void> {
    const dead = await deadAgentTokens(this.#options.pool, tokenIds);
    if (dead.size === 0) return;
    for (const session of [...this.#options.registry.all()]) {
      if (!dead.has(session.tokenId)) continue;
      this.#options.log.info(
        { agentId: session.agentId, sessionId: session.sessionId },
        'cluster:session-closed, its token is no longer valid',
      );
      session.close(closeCodes.tokenInvalid, 'token revoked');
    }
  }
}
