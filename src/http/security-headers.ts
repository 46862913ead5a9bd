/**
 * Headers on every answer, errors and 404s included. `@fastify/helmet` sets
 * the common ones; the profile per environment (HSTS max-age) and the
 * Permissions-Policy are ours. HSTS goes only on answers sent over TLS.
 */
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import type { Environment } from '../config/config.ts';

export const hstsMaxAgeS: Record<Environment, number> = Object.freeze({
  development: 3_600,
  staging: 86_400,
  production: 31_536_000,
});

export const permissionsPolicy = [
  'accelerometer=()',
  'camera=()',
  'geolocation=()',
  'gyroscope=()',
  'magnetometer=()',
  'microphone=()',
  'payment=()',
  'usb=()',
  'interest-cohort=()',
].join(', ');

export interface HeaderProfile {
  readonly environment: Environment;
  readonly hstsIncludeSubDomains: boolean;
  readonly hstsPreload: boolean;
}

export function hstsValue(profile: HeaderProfile): string {
  const parts = [`max-age=${hstsMaxAgeS[profile.environment]}`];
  if (profile.hstsIncludeSubDomains) parts.push('includeSubDomains');
  if (profile.hstsPreload) parts.push('preload');
  return parts.join('; ');
}

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
      directives: {
        defaultSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
    },
  });
  const hsts = hstsValue(profile);
  app.addHook('onSend', async (request, reply) => {
    reply.header('Permissions-Policy', permissionsPolicy);
    reply.header('Cache-Control', 'no-store');
    if ((request.raw.socket as { encrypted?: boolean }).encrypted) {
      reply.header('Strict-Transport-Security', hsts);
    }
  });
}
