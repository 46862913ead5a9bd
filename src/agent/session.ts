/**
 * One agent session: a single `wss` connection from upgrade to close.
 *
 * States: `connecting` (TLS and upgrade) → `awaiting_welcome` (socket open,
 * the server speaks first) → `open` (heartbeats, reports, refresh) →
 * `ended`. Any state can end; how it ended (`SessionEnd`) is for the
 * supervisor to act on, since reconnecting, re-enrolling or giving up are
 * decisions above one connection.
 *
 * Reports flow from the outbox in order, at most `maxInFlight` unacknowledged
 * at once; a report is forgotten only on the server's `ack`. A report the
 * server refuses for now (`rate_limited`, `storage_unavailable`) stays in the
 * outbox and sending pauses for the delay the server gives.
 */
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import type { Clock, TimerHandle } from '../clock/clock.ts';
import { ClientError } from './errors.ts';
import { type ErrorMessage, parseServerFrame, type ServerMessage } from './messages.ts';
import type { Outbox } from './outbox.ts';
import { threatFrame } from './report.ts';
import { classifyTlsError, type Trust, verifiedConnector } from './trust.ts';

export interface SessionSettings {
  /** `wss://HOST:PORT/api/v1/agent`. */
  readonly url: URL;
  readonly token: string;
  readonly trust: Trust;
  readonly outbox: Outbox;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Numbers in [0, 1) for the heartbeat phase; injectable for tests. */
  readonly random: () => number;
  /** When the last heartbeat of any earlier session went out (monotonic ms). */
  readonly lastHeartbeatAtMs: number | undefined;
  /** Persists a refreshed token; the session goes on if it fails. */
  readonly onToken: (token: string, expiresAt: string) => Promise<void>;
  readonly onHeartbeat: (atMs: number) => void;
  readonly maxInFlight?: number;
  readonly welcomeTimeoutMs?: number;
  /** Refresh this long before expiry should the server's notice never come. */
  readonly refreshLeadMs?: number;
}

export type SessionEnd =
  | {
      readonly kind: 'closed';
      readonly code: number;
      readonly reason: string;
      readonly welcomed: boolean;
      /** How long the session was welcomed for, in ms (0 if never). */
      readonly welcomedForMs: number;
    }
  | { readonly kind: 'refused'; readonly status: number; readonly retryAfterMs?: number }
  | { readonly kind: 'failed'; readonly error: ClientError };

type State = 'connecting' | 'awaiting_welcome' | 'open' | 'ended';

const defaultMaxInFlight = 16;
const defaultWelcomeTimeoutMs = 15_000;
const defaultRefreshLeadMs = 10 * 60_000;
const defaultPauseMs = 5_000;
const refreshAnswerTimeoutMs = 60_000;
const minSilenceLimitMs = 90_000;
const maxServerFrameBytes = 1024 * 1024;
const closeGraceMs = 2_000;

/** One connection to the agent socket; create, `start()`, await `ended`. */
export class AgentSession {
  readonly ended: Promise<SessionEnd>;
  readonly #settings: SessionSettings;
  readonly #log: Logger;
  readonly #inFlight = new Set<string>();
  #resolveEnded: (end: SessionEnd) => void = () => {};
  #socket: WebSocket | undefined;
  #state: State = 'connecting';
  #refusal: SessionEnd | undefined;
  #failure: ClientError | undefined;
  #welcomedAtMs: number | undefined;
  #heartbeatIntervalMs = 60_000;
  #refreshPending = false;
  #pausedUntilMs = 0;
  readonly #timers = new Map<string, TimerHandle>();

  constructor(settings: SessionSettings) {
    this.#settings = settings;
    this.#log = settings.logger;
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get state(): State {
    return this.#state;
  }

  /** Opens the connection. */
  start(): void {
    const socket = new WebSocket(this.#settings.url, {
      headers: { authorization: `Bearer ${this.#settings.token}` },
      createConnection: verifiedConnector(this.#settings.trust) as never,
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: 20_000,
      maxPayload: maxServerFrameBytes,
    });
    this.#socket = socket;
    socket.on('unexpected-response', (request, response) => {
      const retryAfter = Number(response.headers['retry-after']);
      this.#refusal = {
        kind: 'refused',
        status: response.statusCode ?? 0,
        ...(Number.isFinite(retryAfter) && retryAfter >= 0
          ? { retryAfterMs: retryAfter * 1_000 }
          : {}),
      };
      response.resume();
      request.destroy();
      socket.terminate();
    });
    socket.on('open', () => this.#socketOnOpen());
    socket.on('message', (data, isBinary) => this.#socketOnMessage(data, isBinary));
    socket.on('ping', () => this.#armSilenceWatch());
    socket.on('error', (error) => this.#socketOnError(error));
    socket.on('close', (code, reason) => this.#socketOnClose(code, reason.toString('utf8')));
  }

  /** Tells the session the outbox has new reports to send. */
  notifyReports(): void {
    this.#pump();
  }

  /** Closes the session (1000 unless told otherwise); `ended` resolves after. */
  close(code = 1000, reason = 'agent stopping'): void {
    this.#clearTimers();
    const socket = this.#socket;
    if (!socket) return;
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.terminate();
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.close(code, reason);
    // A server that never finishes the closing handshake must not hold the stop up.
    this.#setTimer('close_grace', closeGraceMs, () => socket.terminate());
  }

  #socketOnOpen(): void {
    this.#state = 'awaiting_welcome';
    const timeoutMs = this.#settings.welcomeTimeoutMs ?? defaultWelcomeTimeoutMs;
    this.#setTimer('welcome', timeoutMs, () => {
      this.#log.warn({ timeoutMs }, 'session:no_welcome');
      this.#socket?.terminate();
    });
  }

  #socketOnError(error: Error): void {
    if (this.#refusal || this.#failure) return;
    const url = this.#settings.url;
    this.#failure = classifyTlsError(error, { host: url.hostname, port: Number(url.port) || 443 });
  }

  #socketOnClose(code: number, reason: string): void {
    const welcomed = this.#welcomedAtMs !== undefined;
    const wasOpen = this.#state !== 'connecting';
    this.#state = 'ended';
    this.#clearTimers();
    this.#inFlight.clear();

    if (this.#refusal) {
      this.#resolveEnded(this.#refusal);
      return;
    }
    if (!wasOpen) {
      const error =
        this.#failure ?? new ClientError('server_unreachable', { message: 'the upgrade failed' });
      this.#resolveEnded({ kind: 'failed', error });
      return;
    }
    const now = this.#settings.clock.monotonicMs();
    const welcomedForMs = welcomed ? now - (this.#welcomedAtMs ?? now) : 0;
    this.#resolveEnded({ kind: 'closed', code, reason, welcomed, welcomedForMs });
  }

  #socketOnMessage(data: RawData, isBinary: boolean): void {
    this.#armSilenceWatch();
    if (isBinary) {
      this.#log.warn('session:binary_frame_ignored');
      return;
    }
    const parsed = parseServerFrame(data.toString());
    if (parsed.kind === 'invalid') {
      this.#log.warn({ reason: parsed.reason }, 'session:invalid_frame');
      return;
    }
    if (parsed.kind === 'unknown') {
      this.#log.debug({ frameType: parsed.type }, 'session:unknown_frame');
      return;
    }
    if (this.#state === 'awaiting_welcome' && parsed.message.type !== 'welcome') {
      this.#log.warn({ frameType: parsed.message.type }, 'session:frame_before_welcome');
      return;
    }
    this.#dispatch(parsed.message);
  }

  #dispatch(message: ServerMessage): void {
    switch (message.type) {
      case 'welcome':
        this.#onWelcome(message.heartbeat_interval_s, message.token_expires_at);
        break;
      case 'heartbeat_ack':
        break;
      case 'ack':
        void this.#onAck(message.id);
        break;
      case 'token':
        void this.#onToken(message.token, message.expires_at);
        break;
      case 'token_expiring':
        this.#log.info({ expiresAt: message.expires_at }, 'token:expiring');
        this.#requestRefresh();
        break;
      case 'error':
        void this.#onServerError(message);
        break;
    }
  }

  #onWelcome(heartbeatIntervalS: number, tokenExpiresAt: string): void {
    if (this.#state !== 'awaiting_welcome') return;
    this.#state = 'open';
    this.#clearTimer('welcome');
    this.#welcomedAtMs = this.#settings.clock.monotonicMs();
    this.#heartbeatIntervalMs = Math.max(1_000, Math.round(heartbeatIntervalS * 1_000));
    this.#log.info({ heartbeatIntervalS, tokenExpiresAt }, 'session:welcomed');

    this.#setTimer('heartbeat', this.#firstHeartbeatDelayMs(), () => this.#heartbeat());
    this.#scheduleFallbackRefresh(tokenExpiresAt);
    this.#armSilenceWatch();
    this.#pump();
  }

  /**
   * A random phase within one interval, so that a fleet started together does
   * not beat together; but never sooner than one interval after the last
   * heartbeat of an earlier session, which the server's budget still counts.
   */
  #firstHeartbeatDelayMs(): number {
    const phase = Math.floor(this.#settings.random() * this.#heartbeatIntervalMs);
    const last = this.#settings.lastHeartbeatAtMs;
    if (last === undefined) return phase;
    const earliest = last + this.#heartbeatIntervalMs - this.#settings.clock.monotonicMs();
    return Math.max(phase, earliest);
  }

  #heartbeat(): void {
    if (this.#send({ type: 'heartbeat' })) {
      this.#settings.onHeartbeat(this.#settings.clock.monotonicMs());
    }
    this.#setTimer('heartbeat', this.#heartbeatIntervalMs, () => this.#heartbeat());
  }

  /** Drops a connection that went silent: no frame and no ping for too long. */
  #armSilenceWatch(): void {
    if (this.#state !== 'open') return;
    const limitMs = Math.max(minSilenceLimitMs, 2 * this.#heartbeatIntervalMs + 15_000);
    this.#setTimer('silence', limitMs, () => {
      this.#log.warn({ limitMs }, 'session:silent');
      this.#socket?.terminate();
    });
  }

  #pump(): void {
    if (this.#state !== 'open') return;
    if (this.#settings.clock.monotonicMs() < this.#pausedUntilMs) return;
    const window = this.#settings.maxInFlight ?? defaultMaxInFlight;
    for (const report of this.#settings.outbox.inOrder()) {
      if (this.#inFlight.size >= window) return;
      if (this.#inFlight.has(report.id)) continue;
      if (!this.#send(threatFrame(report))) return;
      this.#inFlight.add(report.id);
    }
  }

  async #onAck(id: string): Promise<void> {
    // Still counted in flight until the file is gone, so no pump resends it meanwhile.
    try {
      const known = await this.#settings.outbox.acknowledge(id);
      this.#log.debug({ reportId: id, known }, 'report:acked');
    } catch (error) {
      // The report stays on disk and is sent again; the server stores it once.
      this.#log.error({ err: error, reportId: id }, 'outbox:ack_failed');
    }
    this.#inFlight.delete(id);
    this.#pump();
  }

  async #onServerError(message: ErrorMessage): Promise<void> {
    const fields = { code: message.code, serverMessage: message.message, ref: message.ref };
    if (message.ref === undefined) {
      this.#log.warn(fields, 'session:server_error');
      if (message.code === 'rate_limited' && this.#refreshPending) this.#retryRefreshLater(message);
      return;
    }

    const ref = message.ref;
    if (message.code === 'invalid_message') {
      this.#log.error(fields, 'report:rejected');
      await this.#settings.outbox.reject(ref).catch((error: unknown) => {
        this.#log.error({ err: error, reportId: ref }, 'outbox:reject_failed');
      });
      this.#inFlight.delete(ref);
      this.#pump();
      return;
    }

    this.#inFlight.delete(ref);
    const pauseMs = message.retry_after_ms ?? defaultPauseMs;
    this.#log.warn({ ...fields, pauseMs }, 'report:deferred');
    this.#pausedUntilMs = Math.max(
      this.#pausedUntilMs,
      this.#settings.clock.monotonicMs() + pauseMs,
    );
    this.#setTimer('resume', pauseMs, () => this.#pump());
  }

  #requestRefresh(): void {
    if (this.#refreshPending || this.#state !== 'open') return;
    if (!this.#send({ type: 'refresh' })) return;
    this.#refreshPending = true;
    this.#setTimer('refresh_answer', refreshAnswerTimeoutMs, () => {
      this.#refreshPending = false;
    });
  }

  #retryRefreshLater(message: ErrorMessage): void {
    this.#refreshPending = false;
    this.#clearTimer('refresh_answer');
    const delayMs = message.retry_after_ms ?? 60_000;
    this.#setTimer('refresh', delayMs, () => this.#requestRefresh());
  }

  async #onToken(token: string, expiresAt: string): Promise<void> {
    this.#refreshPending = false;
    this.#clearTimer('refresh_answer');
    this.#log.info({ expiresAt }, 'token:refreshed');
    this.#scheduleFallbackRefresh(expiresAt);
    try {
      await this.#settings.onToken(token, expiresAt);
    } catch (error) {
      this.#log.error({ err: error }, 'token:save_failed');
    }
  }

  /** Refreshes shortly before expiry in case the server's notice is lost. */
  #scheduleFallbackRefresh(expiresAt: string): void {
    const expiresAtMs = Date.parse(expiresAt);
    if (Number.isNaN(expiresAtMs)) return;
    const leadMs = this.#settings.refreshLeadMs ?? defaultRefreshLeadMs;
    const delayMs = Math.max(0, expiresAtMs - leadMs - this.#settings.clock.now());
    // Timers beyond 2^31 ms overflow; a day-long token never needs one that far.
    this.#setTimer('refresh', Math.min(delayMs, 2 ** 31 - 1), () => this.#requestRefresh());
  }

  #send(frame: object): boolean {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  #setTimer(name: string, delayMs: number, callback: () => void): void {
    this.#clearTimer(name);
    const handle = this.#settings.clock.setTimeout(() => {
      this.#timers.delete(name);
      callback();
    }, delayMs);
    this.#timers.set(name, handle);
  }

  #clearTimer(name: string): void {
    const handle = this.#timers.get(name);
    if (handle === undefined) return;
    this.#settings.clock.clearTimeout(handle);
    this.#timers.delete(name);
  }

  #clearTimers(): void {
    for (const handle of this.#timers.values()) this.#settings.clock.clearTimeout(handle);
    this.#timers.clear();
  }
}
