/**
 * The daemon's LISTEN connection: one dedicated pg client, outside the Slonik
 * pool (a pooled connection is handed to other queries and its LISTENs would
 * go with it). States:
 *
 *   connecting — opening the client, then LISTEN on every channel, then the
 *                resync: the owner catches up by cursor on whatever was
 *                committed while nobody listened. Success → listening;
 *                failure → lost.
 *   listening  — notifications flow to `onNotification`. Every `probeEveryMs`
 *                the connection notifies itself on its own probe channel and
 *                must hear it back within `probeDeadlineMs`: a connection
 *                killed by pg_terminate_backend ends at once, one silently cut
 *                (no FIN, no RST) fails the probe. Either → lost.
 *   lost       — the client is torn down and a reconnect is due after a
 *                capped, jittered backoff → connecting.
 *   stopped    — final; entered from any state by `stop()`.
 *
 * Notifications never arrive twice, but some may never arrive (while lost):
 * that is what the resync on every (re)connect is for, which is why LISTEN
 * comes before it and not after.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Clock, TimerHandle } from '../clock/clock.ts';
import type { Logger } from '../log/logger.ts';

export interface ListenTimings {
  readonly probeEveryMs: number;
  readonly probeDeadlineMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly connectTimeoutMs: number;
}

/** A silently cut connection is noticed within probeEveryMs + probeDeadlineMs: 20 s. */
export const defaultListenTimings: ListenTimings = Object.freeze({
  probeEveryMs: 10_000,
  probeDeadlineMs: 10_000,
  reconnectBaseMs: 250,
  reconnectMaxMs: 5_000,
  connectTimeoutMs: 5_000,
});

export interface ListenConnectionOptions {
  readonly connectionUri: string;
  readonly channels: readonly string[];
  /** This connection's own channel for probes; never shared with other daemons. */
  readonly probeChannel: string;
  /** Shown in pg_stat_activity, so an operator can tell which daemon listens where. */
  readonly applicationName: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timings?: Partial<ListenTimings>;
  onNotification(channel: string, payload: string | undefined): void;
  /** Catches up after (re)connecting; a rejection counts as a lost connection. */
  onResync(): Promise<void>;
}

type State = 'idle' | 'connecting' | 'listening' | 'lost' | 'stopped';

export class ListenConnection {
  readonly #options: ListenConnectionOptions;
  readonly #timings: ListenTimings;
  readonly #log: Logger;
  #state: State = 'idle';
  #client: pg.Client | undefined;
  #timer: TimerHandle | undefined;
  #probe: { nonce: string; deadline: TimerHandle } | undefined;
  #failures = 0;
  #lostAtMs: number | undefined;
  #firstListening: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  constructor(options: ListenConnectionOptions) {
    this.#options = options;
    this.#timings = { ...defaultListenTimings, ...options.timings };
    this.#log = options.log.child({ part: 'listen' });
  }

  get state(): State {
    return this.#state;
  }

  /** Resolves once listening and resynced the first time; rejects if that first try fails. */
  start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error('the LISTEN connection was already started');
    return new Promise((resolve, reject) => {
      this.#firstListening = { resolve, reject };
      void this.#connect();
    });
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#clearTimers();
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    this.#state = 'connecting';
    const client = new pg.Client({
      connectionString: this.#options.connectionUri,
      application_name: this.#options.applicationName,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: this.#timings.connectTimeoutMs,
    });
    this.#client = client;
    client.on('error', (error) => this.#lose(client, 'connection error', error));
    client.on('end', () => this.#lose(client, 'connection ended'));
    client.on('notification', (message) => this.#onNotification(client, message));
    try {
      await client.connect();
      const names = [...this.#options.channels, this.#options.probeChannel];
      for (const name of names) await client.query(`LISTEN ${client.escapeIdentifier(name)}`);
      await this.#options.onResync();
    } catch (error) {
      this.#lose(client, 'connect or resync failed', error);
      return;
    }
    if (this.#client !== client || this.#state !== 'connecting') return;
    this.#listening();
  }

  #listening(): void {
    this.#state = 'listening';
    this.#failures = 0;
    if (this.#lostAtMs !== undefined) {
      const gapMs = Math.round(this.#options.clock.monotonicMs() - this.#lostAtMs);
      this.#log.info({ gapMs }, 'cluster:listen-restored, caught up by cursor');
      this.#lostAtMs = undefined;
    } else {
      this.#log.info({ channels: this.#options.channels.length }, 'cluster:listening');
    }
    this.#firstListening?.resolve();
    this.#firstListening = undefined;
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#sendProbe();
    }, this.#timings.probeEveryMs);
  }

  #sendProbe(): void {
    const client = this.#client;
    if (this.#state !== 'listening' || !client) return;
    const nonce = randomUUID();
    const deadline = this.#options.clock.setTimeout(() => {
      this.#probe = undefined;
      this.#lose(client, `no probe answer within ${this.#timings.probeDeadlineMs} ms`);
    }, this.#timings.probeDeadlineMs);
    this.#probe = { nonce, deadline };
    client
      .query('SELECT pg_notify($1, $2)', [this.#options.probeChannel, nonce])
      .catch((error: unknown) => this.#lose(client, 'probe failed', error));
  }

  #onNotification(client: pg.Client, message: pg.Notification): void {
    if (client !== this.#client || this.#state === 'stopped') return;
    if (message.channel !== this.#options.probeChannel) {
      this.#options.onNotification(message.channel, message.payload);
      return;
    }
    if (!this.#probe || message.payload !== this.#probe.nonce) return;
    this.#options.clock.clearTimeout(this.#probe.deadline);
    this.#probe = undefined;
    this.#scheduleProbe();
  }

  /** Tears the client down once, whatever reported it first, and plans the reconnect. */
  #lose(client: pg.Client, reason: string, error?: unknown): void {
    if (client !== this.#client || this.#state === 'stopped' || this.#state === 'lost') return;
    const wasListening = this.#state === 'listening';
    this.#state = 'lost';
    this.#client = undefined;
    this.#clearTimers();
    // end() destroys the socket outright when a query hangs on it (a cut line).
    client.end().catch(() => {});
    this.#lostAtMs ??= this.#options.clock.monotonicMs();
    this.#failures += 1;
    const delayMs = this.#backoffMs();
    this.#log.error(
      { err: error, reason, wasListening, failures: this.#failures, retryInMs: delayMs },
      'cluster:listen-lost',
    );
    if (this.#firstListening) {
      this.#firstListening.reject(error ?? new Error(reason));
      this.#firstListening = undefined;
      this.#state = 'stopped';
      return;
    }
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'lost') void this.#connect();
    }, delayMs);
  }

  #backoffMs(): number {
    const { reconnectBaseMs, reconnectMaxMs } = this.#timings;
    const capped = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** (this.#failures - 1));
    return Math.round(capped / 2 + Math.random() * (capped / 2));
  }

  #clearTimers(): void {
    if (this.#timer) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#probe) this.#options.clock.clearTimeout(this.#probe.deadline);
    this.#probe = undefined;
  }
}
