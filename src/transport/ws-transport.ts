/**
 * The `ws` implementation of the transport seam. Upgrades are authenticated
 * before the handshake completes: a refused one gets a plain HTTP answer and
 * no socket, no actor. Frames over 64 KiB close the socket with 1009 (ws does
 * this itself from `maxPayload`). Every 30 s each socket is pinged; one that
 * has not answered the previous ping is terminated.
 */
import type { IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { carriesCredential, credentialInUrl } from '../credentials/url-guard.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import type { Logger } from '../log/logger.ts';
import { maxFrameBytes } from '../sessions/protocol.ts';
import type { Connection, SocketRoute, SocketServer, UpgradeListener } from './transport.ts';

export const pingIntervalMs = 30_000;

class WsConnection implements Connection {
  readonly remoteAddress: string;
  readonly socket: WebSocket;
  alive = true;
  /** Callers of `drained`, woken as writes complete or when the socket closes. */
  #drainWaiters: Array<{ bytes: number; resolve: () => void }> = [];

  constructor(socket: WebSocket, remoteAddress: string) {
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', () => this.#wakeDrainWaiters());
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(message: object): boolean {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message), this.#onWritten);
    return true;
  }

  drained(bytes: number): Promise<void> {
    if (!this.isOpen || this.bufferedBytes <= bytes) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ bytes, resolve }));
  }

  /** A frame left the write queue: wake the waiters whose bound is now met. */
  readonly #onWritten = (): void => {
    if (this.#drainWaiters.length > 0) this.#wakeDrainWaiters();
  };

  #wakeDrainWaiters(): void {
    const open = this.isOpen;
    const buffered = this.bufferedBytes;
    const waiting = this.#drainWaiters;
    this.#drainWaiters = waiting.filter(({ bytes }) => open && buffered > bytes);
    for (const waiter of waiting) if (!open || buffered <= waiter.bytes) waiter.resolve();
  }

  close(code: number, reason = ''): void {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    if (this.socket.readyState === WebSocket.CLOSING) return;
    this.socket.close(code, reason);
  }

  onText(listener: (text: string) => void): void {
    this.socket.on('message', (data, isBinary) => {
      if (!isBinary) listener(data.toString());
    });
  }

  onBinary(listener: () => void): void {
    this.socket.on('message', (_data, isBinary) => {
      if (isBinary) listener();
    });
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.socket.on('close', (code, reason) => listener(code, reason.toString()));
  }
}

/**
 * The socket server. `securityHeaders` gives the headers for a refused
 * upgrade, like those of every HTTP answer (`answerHeaders` in
 * src/http/security-headers.ts); they depend on whether it came over TLS.
 */
export function createWsSocketServer(
  log: Logger,
  securityHeaders: (request: IncomingMessage) => Readonly<Record<string, string>>,
): SocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const open = new Set<WsConnection>();
  const pinger = setInterval(() => {
    for (const connection of open) {
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }, pingIntervalMs);
  pinger.unref();

  function refuse(request: IncomingMessage, socket: Duplex, error: unknown): void {
    const refusalHeaders = [
      'Content-Type: application/json',
      ...Object.entries(securityHeaders(request)).map(([name, value]) => `${name}: ${value}`),
      'Connection: close',
    ];
    const known = isCitadelError(error) ? error : new CitadelError('internal_error');
    if (!isCitadelError(error)) log.error({ err: error }, 'transport:upgrade-failed');
    const body = JSON.stringify({ error: { code: known.code, message: known.message } });
    const retry = known.retryAfterMs
      ? [`Retry-After: ${Math.ceil(known.retryAfterMs / 1000)}`]
      : [];
    const head = [
      `HTTP/1.1 ${known.status} ${statusText(known.status)}`,
      ...refusalHeaders,
      ...retry,
      `Content-Length: ${Buffer.byteLength(body)}`,
    ];
    if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
    else socket.destroy();
  }

  async function upgrade(
    routes: ReadonlyArray<SocketRoute<unknown>>,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    socket.on('error', () => socket.destroy());
    const url = new URL(request.url ?? '/', 'https://localhost');
    const route = routes.find((r) => r.path === url.pathname);
    if (!route) return refuse(request, socket, new CitadelError('not_found'));
    if (carriesCredential(url)) return refuse(request, socket, credentialInUrl());
    let principal: unknown;
    try {
      principal = await route.authenticate(request);
    } catch (error) {
      if (socket.destroyed) return; // the client left while it was checked: no one to answer
      return refuse(request, socket, error);
    }
    if (socket.destroyed) return;
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new WsConnection(ws, request.socket.remoteAddress ?? 'unknown');
      open.add(connection);
      ws.on('close', () => open.delete(connection));
      ws.on('error', (error) => log.debug({ err: error }, 'transport:socket-error'));
      route.accept(connection, principal, request);
    });
  }

  return {
    attach(server: HttpsServer, routes: ReadonlyArray<SocketRoute<unknown>>): void {
      server.on('upgrade', this.upgradeListener(routes));
    },
    upgradeListener(routes: ReadonlyArray<SocketRoute<unknown>>): UpgradeListener {
      return (request, socket, head) => {
        void upgrade(routes, request, socket, head);
      };
    },
    get openCount() {
      return open.size;
    },
    closeAll(code: number, reason: (index: number) => string): void {
      let index = 0;
      for (const connection of open) connection.close(code, reason(index++));
    },
    stop(): void {
      clearInterval(pinger);
    },
  };
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return texts[status] ?? 'Error';
}
