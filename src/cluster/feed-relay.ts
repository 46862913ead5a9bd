/**
 * Feeds this daemon's FeedHub with every threat stored and every status
 * change made through any daemon, each once, in commit order.
 *
 * It keeps two cursors: the last threat `seq` and the last `update_seq` it
 * published. A notification (or a local commit, or a resync) only says
 * "there is news"; the relay then reads rows after its cursor, in pages, and
 * publishes them. The schema makes rows commit in cursor order (see
 * sql/003_cluster.sql), so reading "after the cursor" never skips a row that
 * commits later. Work runs one pass at a time: news arriving during a pass
 * starts another, and threats are always read before updates, so that no
 * subscriber hears of a change to a threat before the threat itself.
 */
import type { DatabasePool } from 'slonik';
import {
  latestThreatCursors,
  threatsSince,
  threatsUpdatedSince,
} from '../database/queries/threats.ts';
import type { ThreatRow } from '../database/rows.ts';
import type { FeedHub } from '../feed/feed-hub.ts';
import type { Logger } from '../log/logger.ts';

const pageSize = 500;

export interface FeedRelayOptions {
  readonly pool: DatabasePool;
  readonly hub: Pick<FeedHub, 'publishThreats' | 'publishUpdate'>;
  readonly log: Logger;
}

export class FeedRelay {
  readonly #options: FeedRelayOptions;
  #threatCursor: number | undefined;
  #updateCursor: number | undefined;
  #pending = { threats: false, updates: false };
  #running: Promise<void> | undefined;
  #failure: unknown;

  constructor(options: FeedRelayOptions) {
    this.#options = options;
  }

  get cursors(): { threats: number | undefined; updates: number | undefined } {
    return { threats: this.#threatCursor, updates: this.#updateCursor };
  }

  /**
   * Catches up after (re)connecting the LISTEN connection. The first time it
   * only takes the newest cursors: what was stored before this daemon started
   * reaches subscribers through their own replay.
   */
  async resync(): Promise<void> {
    if (this.#threatCursor === undefined || this.#updateCursor === undefined) {
      const latest = await latestThreatCursors(this.#options.pool);
      this.#threatCursor = latest.seq;
      this.#updateCursor = latest.update_seq;
      return;
    }
    this.#failure = undefined;
    this.poke('threats');
    this.poke('updates');
    await this.idle();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** There may be news of this kind; reads it after the cursor, soon. */
  poke(kind: 'threats' | 'updates'): void {
    this.#pending[kind] = true;
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
  }

  /** Waits for the pass in progress, if any. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #run(): Promise<void> {
    while (this.#pending.threats || this.#pending.updates) {
      if (this.#threatCursor === undefined) return;
      try {
        if (this.#pending.threats) {
          this.#pending.threats = false;
          await this.#relayThreats();
        }
        if (this.#pending.updates) {
          this.#pending.updates = false;
          await this.#relayUpdates();
        }
      } catch (error) {
        // The next notification or resync reads from the same cursor again.
        this.#failure = error;
        this.#options.log.error({ err: error, cursors: this.cursors }, 'cluster:relay-failed');
        return;
      }
    }
  }

  async #relayThreats(): Promise<void> {
    for (;;) {
      const since = this.#threatCursor ?? 0;
      const rows = await threatsSince(this.#options.pool, { since, limit: pageSize });
      if (rows.length === 0) return;
      this.#threatCursor = Number(rows.at(-1)!.cursor);
      this.#options.hub.publishThreats(rows);
      if (rows.length < pageSize) return;
    }
  }

  async #relayUpdates(): Promise<void> {
    for (;;) {
      const since = this.#updateCursor ?? 0;
      const rows = await threatsUpdatedSince(this.#options.pool, { since, limit: pageSize });
      for (const { update_seq, ...row } of rows) {
        if (Number(row.cursor) > (this.#threatCursor ?? 0)) {
          // Its threat committed after our last threat read: read threats first.
          this.#pending.threats = true;
          this.#pending.updates = true;
          return;
        }
        this.#updateCursor = update_seq;
        this.#options.hub.publishUpdate(row satisfies ThreatRow);
      }
      if (rows.length < pageSize) return;
    }
  }
}
