/**
 * The live agent sessions of this daemon, by agent id. An agent keeps only
 * its newest session: a second one closes the first with 4409.
 */
import { closeCodes } from './close-codes.ts';

export interface LiveSession {
  readonly agentId: string;
  readonly sessionId: string;
  close(code: number, reason: string): void;
}

export class SessionRegistry {
  readonly #sessions = new Map<string, LiveSession>();

  get size(): number {
    return this.#sessions.size;
  }

  add(session: LiveSession): void {
    const previous = this.#sessions.get(session.agentId);
    this.#sessions.set(session.agentId, session);
    previous?.close(closeCodes.replaced, 'replaced by a newer session');
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
