/**
 * One admin's feed socket. States: awaiting auth (no Authorization header at
 * the upgrade: the first frame must be `{"type":"auth","token"}` within 5 s,
 * else 4401), awaiting subscribe, replaying (stored threats after `since`,
 * oldest first, in pages), live. Tokens are never read from the URL.
 *
 * What a subscriber may cost the daemon is bounded in every state. A replay
 * goes at the reader's pace: it reads the next page only once the socket's
 * queue is low, and stops sending while the queue is high, so it holds one
 * page and about `replayHighWaterBytes` however many threats are stored.
 * Live threats offered meanwhile are not held either: the hub offers them
 * after commit, so the replay's later pages read them, and the replay ends
 * only once it has read past the newest one offered. A status change of a
 * threat already sent goes out at once; one of a threat in the page being
 * sent waits for it (the page may hold the row as it was). A live subscriber
 * with more than `maxFeedBufferedBytes` queued is too slow: it is closed with
 * 4429 and resumes from its last cursor.
 */
import type { DatabasePool } from 'slonik';
import { z } from 'zod';
import type { AdminPrincipal } from '../credentials/admin-tokens.ts';
import { threatsSince } from '../database/queries/threats.ts';
import type { ThreatRow } from '../database/rows.ts';
import { CitadelError } from '../errors/catalogue.ts';
import { describeIssue } from '../errors/zod-issues.ts';
import type { Logger } from '../log/logger.ts';
import { closeCodes } from '../sessions/close-codes.ts';
import { maxInvalidMessages } from '../sessions/protocol.ts';
import type { Connection } from '../transport/transport.ts';
import type { FeedEvent, FeedFilter, FeedHub, FeedSubscriber } from './feed-hub.ts';

export const feedAuthTimeoutMs = 5_000;
/** Bytes queued on a live subscriber's socket past which it is too slow. */
export const maxFeedBufferedBytes = 4 * 1024 * 1024;
/** A replay stops sending while more than this is queued on the socket… */
export const replayHighWaterBytes = 128 * 1024;
/** …and goes on (or reads its next page) once no more than this is. */
export const replayLowWaterBytes = 32 * 1024;
const replayPageSize = 50;
/** Status changes a replay may hold for threats it has yet to send. */
const maxHeldUpdates = 1_000;

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
  /** The cursor of the last threat sent. */
  #lastCursor = 0;
  /** While replaying: the newest threat the hub offered (the replay reads it later). */
  #newestOffered = 0;
  /** While replaying: the last cursor of the page being sent; infinite while one is read. */
  #pageEnd = 0;
  /** While replaying: status changes of threats in the page, by cursor, sent after them. */
  #heldUpdates = new Map<number, FeedEvent>();
  #pacedLogged = false;
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
    if (this.#state === 'live') this.#send(event);
    else if (this.#state === 'replaying') this.#offerWhileReplaying(event);
  }

  #offerWhileReplaying(event: FeedEvent): void {
    const cursor = Number(event.row.cursor);
    if (event.type === 'threat') {
      this.#newestOffered = Math.max(this.#newestOffered, cursor);
      return;
    }
    // Past the page being sent, a later page reads the row as it is now: nothing to hold.
    if (cursor <= this.#lastCursor) this.#send(event);
    else if (cursor <= this.#pageEnd) this.#holdUpdate(cursor, event);
  }

  #holdUpdate(cursor: number, event: FeedEvent): void {
    if (this.#heldUpdates.size >= maxHeldUpdates) this.#tooSlow();
    else this.#heldUpdates.set(cursor, event);
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
    const fields = { bufferedBytes: this.#connection.bufferedBytes, cursor: this.#lastCursor };
    this.#deps.log.info(fields, 'feed:too-slow');
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
      if (!this.#track(principal)) return;
      this.#connection.send({ type: 'authenticated', role: this.#principal.role });
    } catch {
      this.#connection.close(closeCodes.tokenInvalid, 'invalid token');
    }
  }

  async #subscribe(value: unknown): Promise<void> {
    const frame = subscribeFrame.safeParse(value);
    if (!frame.success) return this.#refuse(`subscribe: ${describeIssue(frame.error.issues[0]!)}`);
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

  /** Sends stored threats after `since`, page by page at the reader's pace, then goes live. */
  async #replay(since: number): Promise<void> {
    this.#lastCursor = since;
    try {
      for (;;) {
        const rows = await this.#nextReplayPage();
        if (rows === undefined) return;
        if (!(await this.#sendReplayPage(rows))) return;
        const caughtUp = rows.length < replayPageSize && this.#newestOffered <= this.#lastCursor;
        if (caughtUp) break;
      }
    } catch (error) {
      this.#deps.log.error({ err: error }, 'feed:replay-failed');
      this.#connection.close(closeCodes.restarting, 'replay failed; resume from your cursor');
      return;
    }
    this.#heldUpdates.clear();
    this.#state = 'live';
  }

  /** Waits for the socket's queue to run low, then reads a page; `undefined` once closed. */
  async #nextReplayPage(): Promise<readonly ThreatRow[] | undefined> {
    await this.#waitForReader();
    if (this.#state !== 'replaying') return undefined;
    this.#pageEnd = Number.POSITIVE_INFINITY;
    const rows = await threatsSince(this.#deps.pool, {
      ...this.#filter,
      since: this.#lastCursor,
      limit: replayPageSize,
    });
    if (this.#state !== 'replaying') return undefined;
    this.#pageEnd = Number(rows.at(-1)?.cursor ?? this.#lastCursor);
    for (const cursor of this.#heldUpdates.keys()) {
      if (cursor > this.#pageEnd) this.#heldUpdates.delete(cursor);
    }
    return rows;
  }

  /** Sends a page, pausing whenever the socket's queue is high; false once closed. */
  async #sendReplayPage(rows: readonly ThreatRow[]): Promise<boolean> {
    for (const row of rows) {
      if (this.#connection.bufferedBytes > replayHighWaterBytes) {
        await this.#waitForReader();
        if (this.#state !== 'replaying') return false;
      }
      this.#send({ type: 'threat', row });
      const update = this.#heldUpdates.get(Number(row.cursor));
      this.#heldUpdates.delete(Number(row.cursor));
      if (update) this.#send(update);
    }
    return this.#state === 'replaying';
  }

  async #waitForReader(): Promise<void> {
    if (this.#connection.bufferedBytes <= replayLowWaterBytes) return;
    if (!this.#pacedLogged) {
      this.#pacedLogged = true;
      const fields = { bufferedBytes: this.#connection.bufferedBytes, cursor: this.#lastCursor };
      this.#deps.log.debug(fields, 'feed:replay-paced');
    }
    await this.#connection.drained(replayLowWaterBytes);
  }

  /** Counts the socket against its token; one over the token's limit is refused and closed. */
  #track(principal: AdminPrincipal): boolean {
    this.#untrack = this.#deps.hub.track(principal.tokenId, () =>
      this.#connection.close(closeCodes.tokenInvalid, 'token revoked'),
    );
    if (this.#untrack) return true;
    const refusal = new CitadelError('too_many_subscribers');
    this.#deps.log.info({ tokenId: principal.tokenId, code: refusal.code }, 'feed:refused');
    this.#connection.send({ type: 'error', code: refusal.code, message: refusal.message });
    this.#connection.close(closeCodes.policyViolation, 'too many feed sockets for this token');
    this.#state = 'closed';
    return false;
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
    this.#heldUpdates.clear();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#untrack?.();
    this.#untrack = undefined;
  }
}
