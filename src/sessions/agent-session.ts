/**
 * One agent's session: the bridge between its socket and its actor. It
 * parses each frame with guard clauses, hands valid messages to the handler
 * of their type (`handlers/`), and turns the actor's decisions (offline,
 * token expired) into socket closes. When the socket closes, the actor is
 * stopped and no timer of its remains.
 */
import type { DatabasePool } from 'slonik';
import { type AgentBudgetName, AgentBudgets } from '../budgets/agent-budgets.ts';
import type { BudgetServices } from '../budgets/budget-services.ts';
import type { Clock } from '../clock/clock.ts';
import { refreshWindowFor, type VerifiedAgentToken } from '../credentials/agent-tokens.ts';
import type { Hasher } from '../credentials/hasher.ts';
import type { AgentStatus } from '../database/rows.ts';
import type { Logger } from '../log/logger.ts';
import type { Connection } from '../transport/transport.ts';
import type { WriteBehind } from '../write-behind/write-behind.ts';
import { type AgentActor, startAgentActor } from './agent-machine.ts';
import { closeCodes } from './close-codes.ts';
import { handleHeartbeat } from './handlers/heartbeat.ts';
import { handleRefresh } from './handlers/refresh.ts';
import { handleThreat } from './handlers/threat.ts';
import { maxInvalidMessages, parseInbound } from './protocol.ts';
import type { LiveSession, SessionRegistry } from './registry.ts';

/** Bytes that may wait unsent on an agent's socket; a session's frames are small. */
export const maxAgentBufferedBytes = 256 * 1024;

export interface SessionDeps {
  readonly pool: DatabasePool;
  readonly hasher: Hasher;
  readonly writeBehind: WriteBehind;
  readonly registry: SessionRegistry;
  readonly clock: Clock;
  readonly log: Logger;
  readonly heartbeatIntervalMs: number;
  readonly agentTokenTtlMs: number;
  readonly budgets: BudgetServices;
  /** Claims the agent for a new session across daemons; resolves with the claim number. */
  readonly claims: {
    claim(agentId: string, sessionId: string): Promise<number>;
    /** Checks the session's token again if its agent was revoked since `sinceMs`. */
    recheckIfRevokedSince(session: LiveSession, sinceMs: number): Promise<void>;
  };
  /** Counts a received message by type, `invalid` for refused ones (for metrics). */
  readonly countMessage?: (type: string) => void;
}

export interface AgentIdentity extends VerifiedAgentToken {
  /** The client's address (the socket's, or forwarded by a trusted proxy). */
  readonly address: string;
  /** Drawn at the upgrade, with the claim below. */
  readonly sessionId: string;
  /** The agent's claim for this session, across every daemon (see src/cluster/). */
  readonly claim: number;
  /** When the token was read from the database (the monotonic clock). */
  readonly tokenReadAtMs: number;
}

export class AgentSession implements LiveSession {
  readonly agentId: string;
  readonly hostname: string;
  readonly sessionId: string;
  readonly claim: number;
  readonly deps: SessionDeps;
  readonly log: Logger;
  readonly connection: Connection;
  tokenId: string;
  actor: AgentActor | undefined;
  /** The agent's budgets; the actor's context holds the same object. */
  readonly budgets: AgentBudgets;
  #invalidMessages = 0;
  /** Set by `release()`: the daemon is stopping and has queued this session's last state. */
  #released = false;

  constructor(deps: SessionDeps, connection: Connection, identity: AgentIdentity) {
    this.deps = deps;
    this.connection = connection;
    this.agentId = identity.agentId;
    this.hostname = identity.hostname;
    this.tokenId = identity.tokenId;
    this.sessionId = identity.sessionId;
    this.claim = identity.claim;
    this.log = deps.log.child({ agentId: this.agentId, sessionId: this.sessionId });
    this.budgets = new AgentBudgets(deps.budgets.policy, deps.heartbeatIntervalMs);
    if (identity.storedBudgets && typeof identity.storedBudgets === 'object') {
      this.budgets.restore(identity.storedBudgets, deps.clock.monotonicMs(), deps.clock.now());
    }
    this.#start(identity.expiresAt, identity.address);
    // A revocation may have landed between the token's read and now, when
    // there was no session to close yet.
    if (this.actor) void this.deps.claims.recheckIfRevokedSince(this, identity.tokenReadAtMs);
  }

  #start(tokenExpiresAt: string, address: string): void {
    if (!this.deps.registry.add(this)) {
      this.log.info({ address }, 'session:refused, a newer session of the agent exists');
      this.close(closeCodes.replaced, 'replaced by a newer session');
      return;
    }
    this.connection.onClose((code) => this.#onClosed(code));
    this.connection.onText((text) => this.#onText(text));
    this.connection.onBinary(() => this.rejectMessage('binary frames are not accepted'));
    this.actor = startAgentActor(
      {
        heartbeatIntervalMs: this.deps.heartbeatIntervalMs,
        tokenExpiresAtMs: Date.parse(tokenExpiresAt),
        refreshWindowMs: refreshWindowFor(this.deps.agentTokenTtlMs),
        budgets: this.budgets,
        now: () => this.deps.clock.now(),
        effects: {
          statusChanged: (status) => this.#statusChanged(status),
          tokenExpiring: (expiresAtMs) =>
            this.send({ type: 'token_expiring', expires_at: new Date(expiresAtMs).toISOString() }),
          tokenExpired: () => this.#tokenExpired(),
          livenessLost: () => this.close(closeCodes.goingAway, 'no heartbeat'),
        },
      },
      this.deps.clock,
    );
    this.send({
      type: 'welcome',
      agent_id: this.agentId,
      heartbeat_interval_s: this.deps.heartbeatIntervalMs / 1_000,
      token_expires_at: tokenExpiresAt,
    });
    this.log.info({ address }, 'session:opened');
  }

  /**
   * Spends one unit of a budget. Over budget, the agent gets `rate_limited`
   * with the delay (and `ref` for a report, which is not acked), the refusal
   * is tallied, and false is returned.
   */
  spend(budget: AgentBudgetName, ref?: string): boolean {
    const decision = this.budgets.spend(budget, this.deps.clock.monotonicMs());
    if (decision.allowed) {
      if (budget !== 'heartbeat') this.#persistBudgets();
      return true;
    }
    this.deps.budgets.refusals.record({ budget, agentId: this.agentId });
    this.send({
      type: 'error',
      code: 'rate_limited',
      message: `over the ${budget} budget`,
      retry_after_ms: decision.retryAfterMs,
      ...(ref ? { ref } : {}),
    });
    return false;
  }

  #persistBudgets(): void {
    const snapshot = this.budgets.snapshot(this.deps.clock.monotonicMs(), this.deps.clock.now());
    this.deps.writeBehind.recordBudgets(this.agentId, snapshot);
  }

  /**
   * Sends a frame, unless the agent has stopped reading: past
   * `maxAgentBufferedBytes` queued on its socket, the session is closed
   * (1008) rather than let the daemon's memory grow with it.
   */
  send(message: object): void {
    if (this.connection.bufferedBytes > maxAgentBufferedBytes) {
      this.log.warn({ bufferedBytes: this.connection.bufferedBytes }, 'session:not-reading');
      this.close(closeCodes.policyViolation, 'not reading its socket');
      return;
    }
    this.connection.send(message);
  }

  close(code: number, reason: string): void {
    this.connection.close(code, reason);
  }

  release(): void {
    if (this.#released) return;
    this.#persistBudgets();
    this.#statusChanged('offline');
    this.#released = true;
  }

  /** Answers an invalid message; too many of them close the socket. */
  rejectMessage(reason: string, ref?: string): void {
    this.#invalidMessages += 1;
    this.log.info({ reason, ref }, 'session:invalid-message');
    this.send({ type: 'error', code: 'invalid_message', message: reason, ...(ref ? { ref } : {}) });
    if (this.#invalidMessages >= maxInvalidMessages) {
      this.close(closeCodes.policyViolation, 'too many invalid messages');
    }
  }

  #onText(text: string): void {
    // Released: the socket is closing with a reconnect hint; what the agent
    // sends now is not acked, and it sends it again to the next daemon.
    if (this.#released) return;
    const parsed = parseInbound(text);
    this.deps.countMessage?.(parsed.ok ? parsed.message.type : 'invalid');
    if (!parsed.ok) {
      this.rejectMessage(parsed.reason, parsed.ref);
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'heartbeat':
        handleHeartbeat(this);
        break;
      case 'threat':
        void handleThreat(this, message);
        break;
      case 'refresh':
        void handleRefresh(this);
        break;
    }
  }

  #statusChanged(status: AgentStatus): void {
    if (this.#released) return;
    const current = this.deps.registry.get(this.agentId);
    if (current !== undefined && current !== this) return; // a newer session speaks for it
    const lastHeartbeat =
      status === 'active' ? new Date(this.deps.clock.now()).toISOString() : null;
    this.deps.writeBehind.recordLiveness(this.agentId, status, lastHeartbeat);
    this.log.debug({ status }, 'session:status');
  }

  #tokenExpired(): void {
    this.deps.writeBehind.appendAudit({
      agentId: this.agentId,
      eventType: 'token.expired',
      severity: 'info',
      actor: 'system',
      action: 'close session on token expiry',
      result: 'success',
      details: { token_id: this.tokenId },
    });
    this.close(closeCodes.tokenInvalid, 'token expired');
  }

  #onClosed(code: number): void {
    if (!this.#released) this.#persistBudgets();
    this.deps.registry.remove(this);
    const actor = this.actor;
    this.actor = undefined;
    if (actor) {
      actor.send({ type: 'SOCKET_CLOSED' });
      actor.stop();
    }
    this.log.info({ code }, 'session:closed');
  }
}
