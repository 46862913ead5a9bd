/**
 * The limit of figure 1: a bare `ws` server on Node's HTTPS server with the
 * daemon's own certificate and TLS settings, accepting every upgrade on
 * `/api/v1/agent` and holding the socket idle. No auth, no actor, no
 * database: what one connection costs before the daemon adds anything.
 *
 * Arguments: certificate file, key file. Requests: `ready`, `probe`, `stop`.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { tlsHardening } from '../src/tls/certificates.ts';
import { serveRequests } from './ipc.ts';
import { readProbe, resetLoopDelay } from './probe.ts';

const [certFile, keyFile] = process.argv.slice(2);
if (!certFile || !keyFile) throw new Error('usage: bare-server.ts CERT_FILE KEY_FILE');

const server = createServer({
  ...tlsHardening,
  cert: readFileSync(certFile, 'utf8'),
  key: readFileSync(keyFile, 'utf8'),
});
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 64 * 1024,
  perMessageDeflate: false,
  clientTracking: false,
});
let open = 0;
server.on('upgrade', (request, socket, head) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(request, socket, head, (ws) => {
    open += 1;
    ws.on('close', () => {
      open -= 1;
    });
    ws.on('error', () => {});
  });
});
const listening = new Promise<number>((resolve) => {
  server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
});

serveRequests({
  async ready() {
    const httpsPort = await listening;
    resetLoopDelay();
    return { httpsPort };
  },
  probe(args: { collect?: boolean }) {
    return { ...readProbe(args.collect ?? false), sessions: open };
  },
  resetLoopDelay() {
    resetLoopDelay();
    return true;
  },
  stop() {
    server.close();
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 10);
    return { stopMs: 0 };
  },
});
