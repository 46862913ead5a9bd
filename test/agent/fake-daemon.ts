/**
 * A small real HTTPS and WSS server for the client-side tests: a self-signed
 * certificate made per suite, JSON routes the test sets, and socket upgrades
 * the test accepts or refuses. It records what arrived so tests can assert
 * on it, and it is not the daemon: its only job is to speak the contract.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { generateSelfSigned } from '../../src/tls/certificates.ts';

export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
  /** 64 lower-case hex digits. */
  readonly fingerprint: string;
}

/** Makes a self-signed certificate for localhost and 127.0.0.1. */
export async function makeCertificate(commonName = 'localhost'): Promise<TestCertificate> {
  const pems = await generateSelfSigned({ commonName, ipv6Loopback: false });
  const fingerprint = new X509Certificate(pems.cert).fingerprint256
    .replaceAll(':', '')
    .toLowerCase();
  return { cert: pems.cert, key: pems.key, fingerprint };
}

export interface JsonReply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export type RouteHandler = (request: RecordedRequest) => JsonReply | Promise<JsonReply>;

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

/** Decides an upgrade: `undefined` accepts it, a number refuses it with that status. */
export type UpgradeDecision = (request: IncomingMessage) => number | undefined;

export class FakeDaemon {
  readonly certificate: TestCertificate;
  readonly requests: RecordedRequest[] = [];
  readonly upgrades: IncomingMessage[] = [];
  /** Bytes of application data that reached the server, on any socket. */
  bytesReceived = 0;
  routes = new Map<string, RouteHandler>();
  decideUpgrade: UpgradeDecision = () => undefined;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #sockets = new Set<Socket>();
  #connectionWaiters: Array<(socket: WebSocket, request: IncomingMessage) => void> = [];
  readonly #connections: Array<{ socket: WebSocket; request: IncomingMessage }> = [];

  private constructor(certificate: TestCertificate) {
    this.certificate = certificate;
    this.#server = createServer({ cert: certificate.cert, key: certificate.key });
    this.#server.on('secureConnection', (socket) => {
      this.#sockets.add(socket);
      socket.on('data', (chunk: Buffer) => {
        this.bytesReceived += chunk.length;
      });
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('request', (request, response) => void this.#onRequest(request, response));
    this.#server.on('upgrade', (request, socket, head) => this.#onUpgrade(request, socket, head));
  }

  static async start(certificate?: TestCertificate): Promise<FakeDaemon> {
    const daemon = new FakeDaemon(certificate ?? (await makeCertificate()));
    await new Promise<void>((resolve) => daemon.#server.listen(0, '127.0.0.1', resolve));
    return daemon;
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `https://127.0.0.1:${port}`;
  }

  route(method: string, path: string, handler: RouteHandler): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  /** Resolves with the next accepted socket (or one accepted earlier and not yet taken). */
  nextConnection(): Promise<{ socket: WebSocket; request: IncomingMessage }> {
    const ready = this.#connections.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      this.#connectionWaiters.push((socket, request) => resolve({ socket, request }));
    });
  }

  async stop(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(request.url ?? '/', 'https://fake');
    const recorded: RecordedRequest = {
      method: request.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      authorization: request.headers.authorization,
      body: text === '' ? undefined : JSON.parse(text),
    };
    this.requests.push(recorded);
    const handler = this.routes.get(`${recorded.method} ${recorded.path}`);
    const reply = handler
      ? await handler(recorded)
      : { status: 404, body: { error: { code: 'not_found', message: 'No such resource.' } } };
    response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
    response.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  }

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.push(request);
    const refusal = this.decideUpgrade(request);
    if (refusal !== undefined) {
      socket.end(`HTTP/1.1 ${refusal} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const waiter = this.#connectionWaiters.shift();
      if (waiter) waiter(ws, request);
      else this.#connections.push({ socket: ws, request });
    });
  }
}

/** Collects the JSON frames a socket receives, so a test can await the next one of a type. */
export class FrameLog {
  readonly frames: Array<Record<string, unknown>> = [];
  #waiters: Array<{ type: string; resolve: (frame: Record<string, unknown>) => void }> = [];
  #taken = new Set<number>();

  constructor(socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      this.frames.push(frame);
      const index = this.#waiters.findIndex((waiter) => waiter.type === frame['type']);
      if (index === -1) return;
      const [waiter] = this.#waiters.splice(index, 1);
      this.#taken.add(this.frames.length - 1);
      waiter?.resolve(frame);
    });
  }

  /** The next frame of `type` not yet handed to a test. */
  next(type: string): Promise<Record<string, unknown>> {
    const index = this.frames.findIndex(
      (frame, position) => frame['type'] === type && !this.#taken.has(position),
    );
    if (index !== -1) {
      this.#taken.add(index);
      return Promise.resolve(this.frames[index]!);
    }
    return new Promise((resolve) => this.#waiters.push({ type, resolve }));
  }

  ofType(type: string): Array<Record<string, unknown>> {
    return this.frames.filter((frame) => frame['type'] === type);
  }
}

export function send(socket: WebSocket, frame: object): void {
  socket.send(JSON.stringify(frame));
}

export function welcome(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'welcome',
    agent_id: 'c0ffee00-0000-4000-8000-000000000001',
    heartbeat_interval_s: 60,
    token_expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    ...overrides,
  };
}

export { WebSocket };
