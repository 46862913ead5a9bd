/**
 * Whether a request reached us over TLS: on its own socket, or through a
 * proxy in `TRUSTED_PROXIES` that says so with `X-Forwarded-Proto`. Anyone
 * else's `X-Forwarded-Proto` is ignored.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Every hop the proxies recorded was HTTPS; any `http` (or no header) is not enough. */
export function forwardedOverTls(headers: IncomingHttpHeaders): boolean {
  const raw = headers['x-forwarded-proto'];
  if (raw === undefined) return false;
  const hops = (Array.isArray(raw) ? raw.join(',') : raw).split(',');
  return hops.every((hop) => hop.trim().toLowerCase() === 'https');
}

/** The client's own connection was TLS, directly or through a trusted proxy. */
export function arrivedOverTls(
  request: IncomingMessage,
  isTrustedProxy: (address: string | undefined) => boolean,
): boolean {
  if ((request.socket as { encrypted?: boolean }).encrypted) return true;
  return isTrustedProxy(request.socket.remoteAddress) && forwardedOverTls(request.headers);
}
