/**
 * The live agent sessions of this daemon, by agent id. An agent keeps only
 * its newest session, the one with the highest claim (see
 * src/cluster/session-claims.ts): a newer one closes an older one with 4409,
 * and an older one that finishes opening late is refused. Sessions of the
 * same agent on other daemons are closed through the claims, not here.
 */
import { closeCodes } from './close-codes.ts';

export interface LiveSession {
  readonly agentId: string;
  readonly sessionId: string;
  /** The claim drawn for this session; a higher claim is a newer session. */
  readonly claim: number;
  /** The token the session runs on now (it changes on refresh). */
  readonly tokenId: string;
  close(code: number, reason: string): void;
  /**
   * For a stopping daemon: queues the session's last state (budgets, offline)
   * now, so that every session's goes in one batch, and writes nothing more
   * when its socket closes.
   */
  release(): void;
}

export class SessionRegistry {
  readonly #sessions = new Map<string, LiveSession>();
  readonly #isSuperseded: (agentId: string, claim: number) => boolean;

  /** `isSuperseded` tells whether a newer claim of the agent was heard of elsewhere. */
  constructor(isSuperseded: (agentId: string, claim: number) => boolean = () => false) {
    this.#isSuperseded = isSuperseded;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Registers the session; false (and nothing changes) when a newer one exists. */
  add(session: LiveSession): boolean {
    const previous = this.#sessions.get(session.agentId);
    if (previous && previous.claim > session.claim) return false;
    if (this.#isSuperseded(session.agentId, session.claim)) return false;
    this.#sessions.set(session.agentId, session);
    previous?.close(closeCodes.replaced, 'replaced by a newer session');
    return true;
  }

  /** Forgets the session if it is still the agent's current one. */
  remove(session: LiveSession): void {
    if (this.#sessions.get(session.agentId) === session) this.#sessions.delete(session.agentId);
  }

  get(agentId: string): LiveSession | undefined {
    return this.#sessions.get(agentId);
  }

  all(): IterableIterator<LiveSession> {
    return this.#sessions.values();
  }
}
