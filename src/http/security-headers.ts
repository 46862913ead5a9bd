/**
 * Headers on every answer, errors and 404s included. `@fastify/helmet` sets
 * them on what Fastify answers; the few answers written outside Fastify (the
 * plain-HTTP redirect, refused socket upgrades, malformed requests) take the
 * same values from `answerHeaders()`. The profile per environment (HSTS
 * max-age, includeSubDomains, preload) and the Permissions-Policy are ours.
 * HSTS goes only on answers the client received over TLS: on the HTTPS
 * listener, or from a trusted proxy that says it terminated TLS.
 */
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config, Environment } from '../config/config.ts';

/** HSTS max-age per environment: an hour, a day, a year. */
export const hstsMaxAgeS: Readonly<Record<Environment, number>> = Object.freeze({
  development: 3_600,
  staging: 86_400,
  production: 31_536_000,
});

/** Every powerful browser feature off: an API and its dashboard need none. */
export const permissionsPolicy = [
  'accelerometer=()',
  'autoplay=()',
  'browsing-topics=()',
  'camera=()',
  'display-capture=()',
  'geolocation=()',
  'gyroscope=()',
  'hid=()',
  'magnetometer=()',
  'microphone=()',
  'midi=()',
  'payment=()',
  'serial=()',
  'usb=()',
].join(', ');

/**
 * Nothing may load, frame, or submit anywhere. The dashboard, when it comes,
 * will widen `default-src` to `'self'` for its own assets and no further.
 */
const cspDirectives: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'default-src': ["'none'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
});

/** The Content-Security-Policy value, written as helmet writes it. */
export const contentSecurityPolicy = Object.entries(cspDirectives)
  .map(([name, values]) => `${name} ${values.join(' ')}`)
  .join(';');

/** The headers the contract names, as every answer carries them. */
const contractHeaders: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'strict-origin-when-cross-origin',
  'Content-Security-Policy': contentSecurityPolicy,
  'Permissions-Policy': permissionsPolicy,
  'Cache-Control': 'no-store',
});

export interface HeaderProfile {
  readonly environment: Environment;
  readonly hstsIncludeSubDomains: boolean;
  readonly hstsPreload: boolean;
}

/** The profile a configuration asks for. */
export function headerProfileOf(config: Config): HeaderProfile {
  return {
    environment: config.environment,
    hstsIncludeSubDomains: config.hstsIncludeSubDomains,
    hstsPreload: config.hstsPreload,
  };
}

/** The `Strict-Transport-Security` value for a profile. */
export function hstsValue(profile: HeaderProfile): string {
  const parts = [`max-age=${hstsMaxAgeS[profile.environment]}`];
  if (profile.hstsIncludeSubDomains) parts.push('includeSubDomains');
  if (profile.hstsPreload) parts.push('preload');
  return parts.join('; ');
}

/** The security headers of an answer written outside Fastify. */
export function answerHeaders(
  profile: HeaderProfile,
  overTls: boolean,
): Readonly<Record<string, string>> {
  if (!overTls) return contractHeaders;
  return { ...contractHeaders, 'Strict-Transport-Security': hstsValue(profile) };
}

/** True when the client's own connection was TLS, directly or through a trusted proxy. */
export function reachedOverTls(request: FastifyRequest): boolean {
  if ((request.raw.socket as { encrypted?: boolean }).encrypted) return true;
  // Fastify reads X-Forwarded-Proto only from a peer in TRUSTED_PROXIES.
  return request.protocol === 'https';
}

/** Registers helmet and our profile on every route, the 404 handler included. */
export async function registerSecurityHeaders(
  app: FastifyInstance,
  profile: HeaderProfile,
): Promise<void> {
  await app.register(helmet, {
    global: true,
    hsts: false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    crossOriginEmbedderPolicy: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: Object.fromEntries(
        Object.entries(cspDirectives).map(([name, values]) => [name, [...values]]),
      ),
    },
  });
  const hsts = hstsValue(profile);
  app.addHook('onSend', async (request, reply) => {
    reply.header('Permissions-Policy', permissionsPolicy);
    reply.header('Cache-Control', 'no-store');
    if (reachedOverTls(request)) reply.header('Strict-Transport-Security', hsts);
  });
}
