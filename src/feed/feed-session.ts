/**
 * One admin's feed socket. States: awaiting auth (no Authorization header at
 * the upgrade: the first frame must be `{"type":"auth","token"}` within 5 s,
 * else 4401), awaiting subscribe, replaying (stored threats after `since`,
 * oldest first, in pages), live. Tokens are never read from the URL.
 */
import type { DatabasePool } from 'slonik';
import { z } from 'zod';
import type { AdminPrincipal } from '../credentials/admin-tokens.ts';
import { threatsSince } from '../database/queries/threats.ts';
import type { ThreatRow } from '../database/rows.ts';
import type { Logger } from '../log/logger.ts';
import { closeCodes } from '../sessions/close-codes.ts';
import { maxInvalidMessages } from '../sessions/protocol.ts';
import type { Connection } from '../transport/transport.ts';
import type { FeedEvent, FeedFilter, FeedHub, FeedSubscriber } from './feed-hub.ts';

export const feedAuthTimeoutMs = 5_000;
/** Bytes queued on a subscriber's socket past which it is too slow. */
export const maxFeedBufferedBytes = 4 * 1024 * 1024;
/** Live events held while a subscriber replays. */
export const maxReplayBacklog = 10_000;
const replayPageSize = 500;

const authFrame = z.strictObject({ type: z.literal('auth'), token: z.string().max(200) });
const subscribeFrame = z.strictObject({
  type: z.literal('subscribe'),
  min_severity: z.int().min(1).max(10).optional(),
  agent_id: z.uuid().optional(),
  since: z
    .string()
    .regex(/^\d{1,15}$/)
    .optional(),
});

export interface FeedDeps {
  readonly pool: DatabasePool;
  readonly hub: FeedHub;
  readonly log: Logger;
  readonly verifyToken: (token: string) => Promise<AdminPrincipal>;
}

export class FeedSession implements FeedSubscriber {
  readonly #deps: FeedDeps;
  readonly #connection: Connection;
  #principal: AdminPrincipal | null;
  #filter: FeedFilter = {};
  #state: 'auth' | 'authenticating' | 'subscribe' | 'replaying' | 'live' | 'closed' = 'auth';
  #invalidFrames = 0;
  #backlog: FeedEvent[] = [];
  #lastCursor = 0;
  #unsubscribe: (() => void) | undefined;
  #authTimer: NodeJS.Timeout | undefined;
  #untrack: (() => void) | undefined;

  constructor(deps: FeedDeps, connection: Connection, principal: AdminPrincipal | null) {
    this.#deps = deps;
    this.#connection = connection;
    this.#principal = principal;
    connection.onText((text) => void this.#onText(text));
    connection.onBinary(() => this.#refuse('binary frames are not accepted'));
    connection.onClose(() => this.#onClosed());
    if (principal) {
      this.#state = 'subscribe';
      this.#track(principal);
    } else {
      this.#authTimer = setTimeout(() => {
        connection.close(closeCodes.tokenInvalid, 'no auth frame within 5 s');
      }, feedAuthTimeoutMs);
    }
  }

  get filter(): FeedFilter {
    return this.#filter;
  }

  offer(event: FeedEvent): void {
    if (this.#state === 'replaying') {
      if (this.#backlog.length >= maxReplayBacklog) {
        this.#tooSlow();
        return;
      }
      this.#backlog.push(event);
      return;
    }
    if (this.#state === 'live') this.#send(event);
  }

  #send(event: FeedEvent): void {
    const cursor = Number(event.row.cursor);
    if (event.type === 'threat') {
      if (cursor <= this.#lastCursor) return;
      this.#lastCursor = cursor;
    }
    if (this.#connection.bufferedBytes > maxFeedBufferedBytes) {
      this.#tooSlow();
      return;
    }
    this.#connection.send({ type: event.type, ...event.row });
  }

  #tooSlow(): void {
    this.#connection.close(closeCodes.tooSlow, 'too slow; resume from your last cursor');
    this.#onClosed();
  }

  async #onText(text: string): Promise<void> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.#refuse('the frame is not JSON');
    }
    if (this.#state === 'auth') return this.#authenticate(value);
    if (this.#state === 'subscribe') return this.#subscribe(value);
    this.#refuse(this.#state === 'authenticating' ? 'still authenticating' : 'already subscribed');
  }

  async #authenticate(value: unknown): Promise<void> {
    const frame = authFrame.safeParse(value);
    if (!frame.success) {
      this.#connection.close(closeCodes.tokenInvalid, 'the first frame must be auth');
      return;
    }
    clearTimeout(this.#authTimer);
    this.#state = 'authenticating';
    try {
      const principal = await this.#deps.verifyToken(frame.data.token);
      if (this.#state !== 'authenticating') return; // closed meanwhile
      this.#principal = principal;
      this.#state = 'subscribe';
      this.#track(principal);
      this.#connection.send({ type: 'authenticated', role: this.#principal.role });
    } catch {
      this.#connection.close(closeCodes.tokenInvalid, 'invalid token');
    }
  }

  async #subscribe(value: unknown): Promise<void> {
    const frame = subscribeFrame.safeParse(value);
    if (!frame.success) return this.#refuse(frame.error.issues[0]?.message ?? 'bad subscribe');
    const { min_severity, agent_id, since } = frame.data;
    this.#filter = {
      ...(min_severity === undefined ? {} : { minSeverity: min_severity }),
      ...(agent_id === undefined ? {} : { agentId: agent_id }),
    };
    this.#state = since === undefined ? 'live' : 'replaying';
    this.#unsubscribe = this.#deps.hub.subscribe(this);
    this.#connection.send({ type: 'subscribed' });
    if (since !== undefined) await this.#replay(Number(since));
  }

  async #replay(since: number): Promise<void> {
    this.#lastCursor = since;
    try {
      for (;;) {
        const rows: readonly ThreatRow[] = await threatsSince(this.#deps.pool, {
          ...this.#filter,
          since: this.#lastCursor,
          limit: replayPageSize,
        });
        for (const row of rows) this.#send({ type: 'threat', row });
        if (this.#state !== 'replaying') return;
        if (rows.length < replayPageSize) break;
      }
    } catch (error) {
      this.#deps.log.error({ err: error }, 'feed:replay-failed');
      this.#connection.close(closeCodes.restarting, 'replay failed; resume from your cursor');
      return;
    }
    this.#state = 'live';
    const backlog = this.#backlog;
    this.#backlog = [];
    for (const event of backlog) this.#send(event);
  }

  #track(principal: AdminPrincipal): void {
    this.#untrack = this.#deps.hub.track(principal.tokenId, () =>
      this.#connection.close(closeCodes.tokenInvalid, 'token revoked'),
    );
  }

  /** Answers a bad frame; as on the agent socket, too many close the socket with 1008. */
  #refuse(reason: string): void {
    this.#invalidFrames += 1;
    this.#connection.send({ type: 'error', code: 'invalid_message', message: reason });
    if (this.#invalidFrames >= maxInvalidMessages) {
      this.#connection.close(closeCodes.policyViolation, 'too many invalid messages');
    }
  }

  #onClosed(): void {
    clearTimeout(this.#authTimer);
    this.#state = 'closed';
    this.#backlog = [];
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#untrack?.();
    this.#untrack = undefined;
  }
}
