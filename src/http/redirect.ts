/**
 * The plain-HTTP listener. It exists only to send clients to HTTPS: 308 to
 * the same path and query on the canonical host (from configuration, never
 * from the request's `Host`). In development, a request that arrives on a
 * loopback socket is served instead; that decision reads the socket's own
 * addresses, so no header can change it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isLoopback } from '../net/addresses.ts';
import { permissionsPolicy } from './security-headers.ts';

export interface RedirectSettings {
  readonly publicHost: string;
  readonly serveLoopback: boolean;
  /** Serves a request as HTTPS would (Fastify's router). */
  readonly serve: (request: IncomingMessage, response: ServerResponse) => void;
}

export function createRedirectServer(settings: RedirectSettings): Server {
  return createServer((request, response) => {
    const socket = request.socket;
    const local = isLoopback(socket.remoteAddress) && isLoopback(socket.localAddress);
    if (settings.serveLoopback && local) return settings.serve(request, response);
    const target = `https://${settings.publicHost}${safePath(request.url)}`;
    response.writeHead(308, {
      Location: target,
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'strict-origin-when-cross-origin',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
      'Permissions-Policy': permissionsPolicy,
      'Cache-Control': 'no-store',
    });
    response.end(JSON.stringify({ error: { code: 'https_required', message: target } }));
  });
}

/** The request target as a path: an absolute-form URL keeps only its path and query. */
function safePath(url: string | undefined): string {
  const parsed = new URL(url ?? '/', 'http://placeholder');
  return `${parsed.pathname}${parsed.search}`;
}
