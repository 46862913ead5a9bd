/**
 * The plain-HTTP listener. It exists only to send clients to HTTPS: 308 (the
 * method and body are kept, unlike 301/302) to the same path and query on
 * the canonical host from configuration, never the request's `Host`.
 *
 * Two kinds of request are served instead, and both are decided from the
 * socket's own addresses, so no header alone can earn them:
 * - in development, one whose both ends are loopback addresses;
 * - one from a peer in `TRUSTED_PROXIES` that says, with
 *   `X-Forwarded-Proto: https`, that it terminated TLS for the client. This
 *   is what keeps a TLS-terminating proxy out of a redirect loop.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { CitadelError } from '../errors/catalogue.ts';
import { isLoopback } from '../net/addresses.ts';
import { forwardedOverTls } from './forwarded.ts';
import { answerMalformedRequest, rawAnswer } from './raw-answer.ts';
import { answerHeaders, type HeaderProfile } from './security-headers.ts';

export interface RedirectSettings {
  /** `host[:port]` of the HTTPS listener as clients should name it. */
  readonly publicHost: string;
  /** Serve loopback-to-loopback requests (development only). */
  readonly serveLoopback: boolean;
  /** Whether a peer address is in `TRUSTED_PROXIES`. */
  readonly isTrustedProxy: (address: string | undefined) => boolean;
  readonly headers: HeaderProfile;
  /** Serves a request as HTTPS would (Fastify's router). */
  readonly serve: (request: IncomingMessage, response: ServerResponse) => void;
  /** Serves a socket upgrade as HTTPS would (the agent and feed sockets). */
  readonly serveUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** What the listener does with a request, from its socket and one proxy header. */
export function redirectDecision(
  request: IncomingMessage,
  settings: Pick<RedirectSettings, 'serveLoopback' | 'isTrustedProxy'>,
): 'serve' | 'redirect' {
  const { remoteAddress, localAddress } = request.socket;
  if (settings.serveLoopback && isLoopback(remoteAddress) && isLoopback(localAddress)) {
    return 'serve';
  }
  if (settings.isTrustedProxy(remoteAddress) && forwardedOverTls(request.headers)) return 'serve';
  return 'redirect';
}

/** The HTTPS URL for a request target; an absolute-form target keeps only path and query. */
export function redirectTarget(publicHost: string, requestTarget: string | undefined): string {
  const target = requestTarget ?? '/';
  if (target.startsWith('/') && !target.startsWith('//')) return `https://${publicHost}${target}`;
  const parsed = new URL(target, 'http://placeholder');
  return `https://${publicHost}${parsed.pathname}${parsed.search}`;
}

/** The plain-HTTP server: redirects, or hands the request to `serve`. */
export function createRedirectServer(settings: RedirectSettings): Server {
  const headers = answerHeaders(settings.headers, false);
  const server = createServer((request, response) => {
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    if (redirectDecision(request, settings) === 'serve') {
      settings.serve(request, response);
      return;
    }
    const location = redirectTarget(settings.publicHost, request.url);
    const body = JSON.stringify(httpsRequired(location).toBody());
    response.writeHead(308, {
      Location: location,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
    });
    response.end(body);
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (redirectDecision(request, settings) === 'serve') {
      settings.serveUpgrade(request, socket, head);
      return;
    }
    const location = redirectTarget(settings.publicHost, request.url);
    socket.on('error', () => socket.destroy());
    socket.end(
      rawAnswer(308, { ...headers, Location: location }, httpsRequired(location).toBody()),
    );
  });
  server.on('clientError', answerMalformedRequest(headers));
  return server;
}

function httpsRequired(location: string): CitadelError {
  return new CitadelError('https_required', { details: { location } });
}
