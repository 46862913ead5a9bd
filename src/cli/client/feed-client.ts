/**
 * The live feed client: subscribes, hands every `threat` and
 * `threat_updated` frame to its output as one JSON line, and reconnects
 * after any loss, resuming after the last cursor it printed.
 *
 * States: `connecting` → `subscribing` (upgrade done, `subscribe` sent) →
 * `live` (after `subscribed`) → `waiting` (backoff) → `connecting` …; it
 * stops on `stop()` or on a refusal that retrying cannot cure: a rejected
 * token (401 at the upgrade, or close 4401), a missing role (403), or a
 * server certificate that is not trusted.
 */
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import { Backoff, type BackoffSettings } from '../../agent/backoff.ts';
import { ClientError } from '../../agent/errors.ts';
import { endpoint } from '../../agent/https-json.ts';
import { reconnectHintMs } from '../../agent/messages.ts';
import { classifyTlsError, verifiedConnector } from '../../agent/trust.ts';
import type { Connection } from './options.ts';

export interface FeedFilter {
  readonly minSeverity?: number;
  readonly agentId?: string;
}

export interface FeedOutput {
  /** Writes one line; `false` asks the client to wait for `drain`. */
  write(line: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export interface FeedSettings {
  readonly connection: Connection;
  readonly token: string;
  readonly filter: FeedFilter;
  /** Resume after this cursor. */
  readonly since?: string;
  readonly output: FeedOutput;
  readonly logger: Logger;
  readonly backoff?: Partial<BackoffSettings>;
}

type FeedEnd =
  | { readonly kind: 'closed'; readonly code: number; readonly reason: string }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'failed'; readonly error: ClientError };

const forwardedTypes = new Set(['threat', 'threat_updated']);
const maxFeedFrameBytes = 4 * 1024 * 1024;
const closeGraceMs = 2_000;

/** Follows the feed until `stop()`; rejects with a `ClientError` on a final refusal. */
export class FeedClient {
  readonly #settings: FeedSettings;
  readonly #backoff: Backoff;
  #cursor: string | undefined;
  #socket: WebSocket | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;

  constructor(settings: FeedSettings) {
    this.#settings = settings;
    this.#cursor = settings.since;
    this.#backoff = new Backoff(settings.backoff);
  }

  /** The cursor of the last threat printed. */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  async run(): Promise<void> {
    while (!this.#stopping) {
      const end = await this.#follow();
      if (this.#stopping) return;
      const delayMs = this.#decideAfter(end);
      this.#settings.logger.info({ delayMs, cursor: this.#cursor }, 'feed:reconnecting');
      await this.#wait(delayMs);
    }
  }

  stop(): void {
    this.#stopping = true;
    this.#wake?.();
    const socket = this.#socket;
    if (!socket) return;
    socket.close(1000, 'client stopping');
    // A server that never finishes the closing handshake must not hold the exit up.
    setTimeout(() => socket.terminate(), closeGraceMs).unref();
  }

  #decideAfter(end: FeedEnd): number {
    const log = this.#settings.logger;
    if (end.kind === 'failed') {
      if (!end.error.retryable) throw end.error;
      log.warn({ code: end.error.code, reason: end.error.message }, 'feed:connect_failed');
      return this.#backoff.nextDelayMs();
    }
    if (end.kind === 'refused') {
      if (end.status === 401 || end.status === 403) throw refusal(end.status);
      log.warn({ status: end.status }, 'feed:upgrade_refused');
      return this.#backoff.nextDelayMs();
    }
    if (end.code === 4401) throw refusal(401, end.reason);
    log.warn({ code: end.code, reason: end.reason.slice(0, 200) }, 'feed:closed');
    const hintMs = end.code === 1001 || end.code === 1012 ? reconnectHintMs(end.reason) : undefined;
    return hintMs ?? this.#backoff.nextDelayMs();
  }

  /** One connection, from upgrade to close. */
  #follow(): Promise<FeedEnd> {
    const { connection, token } = this.#settings;
    const url = endpoint(connection.server, '/api/v1/feed', 'wss:');
    const socket = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      createConnection: verifiedConnector(connection.trust) as never,
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: 20_000,
      maxPayload: maxFeedFrameBytes,
    });
    this.#socket = socket;

    return new Promise((resolve) => {
      let outcome: FeedEnd | undefined;
      socket.on('unexpected-response', (request, response) => {
        outcome = { kind: 'refused', status: response.statusCode ?? 0 };
        response.resume();
        request.destroy();
        socket.terminate();
      });
      socket.on('error', (error) => {
        const target = { host: url.hostname, port: Number(url.port) || 443 };
        outcome ??= { kind: 'failed', error: classifyTlsError(error, target) };
      });
      socket.on('open', () => socket.send(JSON.stringify(this.#subscribeFrame())));
      socket.on('message', (data, isBinary) => this.#socketOnMessage(socket, data, isBinary));
      socket.on('close', (code, reason) => {
        this.#socket = undefined;
        const closed: FeedEnd = { kind: 'closed', code, reason: reason.toString('utf8') };
        resolve(outcome ?? closed);
      });
    });
  }

  #subscribeFrame(): Record<string, unknown> {
    const { minSeverity, agentId } = this.#settings.filter;
    const frame: Record<string, unknown> = { type: 'subscribe' };
    if (minSeverity !== undefined) frame['min_severity'] = minSeverity;
    if (agentId !== undefined) frame['agent_id'] = agentId;
    if (this.#cursor !== undefined) frame['since'] = this.#cursor;
    return frame;
  }

  #socketOnMessage(socket: WebSocket, data: RawData, isBinary: boolean): void {
    if (isBinary) return;
    const text = data.toString();
    let frame: { type?: unknown; cursor?: unknown; code?: unknown; message?: unknown };
    try {
      frame = JSON.parse(text);
    } catch {
      this.#settings.logger.warn('feed:invalid_frame');
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    if (frame.type === 'subscribed') {
      this.#backoff.reset();
      this.#settings.logger.info({ since: this.#cursor }, 'feed:subscribed');
      return;
    }
    if (frame.type === 'error') {
      const fields = { code: String(frame.code), serverMessage: String(frame.message) };
      this.#settings.logger.warn(fields, 'feed:server_error');
      return;
    }
    if (typeof frame.type !== 'string' || !forwardedTypes.has(frame.type)) return;

    if (
      frame.type === 'threat' &&
      (typeof frame.cursor === 'string' || typeof frame.cursor === 'number')
    ) {
      this.#cursor = String(frame.cursor);
    }
    if (!this.#settings.output.write(JSON.stringify(frame) + '\n')) {
      socket.pause();
      this.#settings.output.once('drain', () => socket.resume());
    }
  }

  async #wait(delayMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }
}

function refusal(status: number, reason?: string): ClientError {
  const serverCode = status === 403 ? 'forbidden' : 'unauthorized';
  const message =
    status === 403
      ? 'the admin token lacks the role the feed needs'
      : `the server refused the admin token${reason ? ` (${reason})` : ''}`;
  return new ClientError('api_error', { message, serverCode, status });
}
