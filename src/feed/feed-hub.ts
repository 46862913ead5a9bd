/**
 * The live threat feed's fan-out. New threats (after commit) and status
 * changes are offered to every subscriber whose filter matches; each
 * subscriber decides what to do with them (see feed-session.ts: a replaying
 * one reads them from the database later, a live one sends them at once or is
 * closed as too slow). Open feed sockets are counted by the admin token that
 * opened them: one token holds at most `maxFeedSocketsPerToken` on a daemon.
 */
import type { ThreatRow } from '../database/rows.ts';

/** Feed sockets one admin token may hold open on one daemon. */
export const maxFeedSocketsPerToken = 10;

export interface FeedFilter {
  readonly minSeverity?: number;
  readonly agentId?: string;
}

export interface FeedEvent {
  readonly type: 'threat' | 'threat_updated';
  readonly row: ThreatRow;
}

export interface FeedSubscriber {
  readonly filter: FeedFilter;
  offer(event: FeedEvent): void;
}

export function matches(filter: FeedFilter, row: ThreatRow): boolean {
  if (filter.minSeverity !== undefined && row.severity < filter.minSeverity) return false;
  if (filter.agentId !== undefined && row.agent_id !== filter.agentId) return false;
  return true;
}

export class FeedHub {
  readonly #subscribers = new Set<FeedSubscriber>();
  /** Open feed sockets by the admin token that opened them, for revocation. */
  readonly #byToken = new Map<string, Set<() => void>>();
  readonly #maxSocketsPerToken: number;

  constructor(options: { maxSocketsPerToken?: number } = {}) {
    this.#maxSocketsPerToken = options.maxSocketsPerToken ?? maxFeedSocketsPerToken;
  }

  /** Whether the token may open one more feed socket here. */
  hasRoomFor(tokenId: string): boolean {
    return (this.#byToken.get(tokenId)?.size ?? 0) < this.#maxSocketsPerToken;
  }

  /**
   * Remembers how to close a socket opened with the token; returns the forget
   * call, or `undefined` when the token already holds as many as it may.
   */
  track(tokenId: string, close: () => void): (() => void) | undefined {
    if (!this.hasRoomFor(tokenId)) return undefined;
    let closers = this.#byToken.get(tokenId);
    if (!closers) {
      closers = new Set();
      this.#byToken.set(tokenId, closers);
    }
    closers.add(close);
    return () => {
      closers.delete(close);
      if (closers.size === 0) this.#byToken.delete(tokenId);
    };
  }

  /** Closes every feed socket opened with the token: its revocation reaches them at once. */
  closeToken(tokenId: string): void {
    for (const close of [...(this.#byToken.get(tokenId) ?? [])]) close();
  }

  /** The admin tokens that open feed sockets here use, to check them for revocation. */
  trackedTokenIds(): string[] {
    return [...this.#byToken.keys()];
  }

  get size(): number {
    return this.#subscribers.size;
  }

  subscribe(subscriber: FeedSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  publishThreats(rows: readonly ThreatRow[]): void {
    for (const row of rows) this.#publish({ type: 'threat', row });
  }

  publishUpdate(row: ThreatRow): void {
    this.#publish({ type: 'threat_updated', row });
  }

  #publish(event: FeedEvent): void {
    for (const subscriber of this.#subscribers) {
      if (matches(subscriber.filter, event.row)) subscriber.offer(event);
    }
  }
}
