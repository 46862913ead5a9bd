/**
 * The seam between the daemon and its WebSocket library. Sessions and the
 * feed speak only to these interfaces; `ws-transport.ts` implements them with
 * `ws`. Another transport (say uWebSockets.js) would implement the same few
 * calls and nothing above this seam would change.
 */
import type { IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

/** One accepted socket, as the layers above see it. */
export interface Connection {
  /** The peer's address as the socket sees it (never from a header). */
  readonly remoteAddress: string;
  /** Bytes queued but not yet written to the network. */
  readonly bufferedBytes: number;
  readonly isOpen: boolean;
  /** Sends one JSON text frame; false when the socket is no longer open. */
  send(message: object): boolean;
  /**
   * Resolves once at most `bytes` are queued, or the socket has closed: a
   * sender that waits for it goes at the peer's reading pace.
   */
  drained(bytes: number): Promise<void>;
  close(code: number, reason?: string): void;
  onText(listener: (text: string) => void): void;
  /** A binary frame: the protocol speaks text only. */
  onBinary(listener: () => void): void;
  onClose(listener: (code: number, reason: string) => void): void;
}

/** A socket endpoint: who may upgrade, and what happens to their socket. */
export interface SocketRoute<Principal> {
  readonly path: string;
  /**
   * Decides the upgrade before any socket exists. Throwing a `CitadelError`
   * refuses it with that error's status and body.
   */
  authenticate(request: IncomingMessage): Promise<Principal>;
  accept(connection: Connection, principal: Principal, request: IncomingMessage): void;
}

export type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface SocketServer {
  /** Starts serving upgrades on the HTTPS server for the given routes. */
  attach(server: HttpsServer, routes: ReadonlyArray<SocketRoute<unknown>>): void;
  /**
   * The same service as a listener, for a server that decides first which
   * upgrades to pass on (the plain-HTTP listener behind a trusted proxy).
   */
  upgradeListener(routes: ReadonlyArray<SocketRoute<unknown>>): UpgradeListener;
  /** Open sockets across all routes. */
  readonly openCount: number;
  /** Closes every socket with the code and reason; for shutdown. */
  closeAll(code: number, reason: (index: number) => string): void;
  /** Stops pinging; closes nothing. */
  stop(): void;
}
