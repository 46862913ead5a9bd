/**
 * The HTTPS application: the admin API, enrollment and health, on a Fastify
 * instance whose server is an `https.Server` of ours (so its certificate can
 * be swapped on SIGHUP and the socket routes can share it). Errors answer as
 * `{"error": {"code", "message"}}` from the one catalogue.
 */
import { createServer, type Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { carriesCredential, credentialInUrl } from '../credentials/url-guard.ts';
import { CitadelError, isCitadelError } from '../errors/catalogue.ts';
import { type TlsMaterial, tlsHardening } from '../tls/certificates.ts';
import type { HttpDeps } from './deps.ts';
import { answerMalformedRequest } from './raw-answer.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAgentRoutes } from './routes/agents.ts';
import { registerEnrollRoutes } from './routes/enroll.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import { registerThreatRoutes } from './routes/threats.ts';
import { answerHeaders, headerProfileOf, registerSecurityHeaders } from './security-headers.ts';

/** The largest request body accepted, like the largest socket frame. */
export const maxBodyBytes = 64 * 1024;

export async function buildHttpApp(
  deps: HttpDeps,
  tls: TlsMaterial,
): Promise<{ app: FastifyInstance; server: HttpsServer }> {
  let server: HttpsServer | undefined;
  const profile = headerProfileOf(deps.config);
  const tlsHeaders = answerHeaders(profile, true);
  // Typed as the default instance: route modules need not know the server type.
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }),
    // Each request is logged by our hooks (refusals, failures), not by Fastify.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: maxBodyBytes,
    trustProxy: deps.config.trustedProxies.length > 0 ? [...deps.config.trustedProxies] : false,
    return503OnClosing: true,
    clientErrorHandler: answerMalformedRequest(tlsHeaders),
    serverFactory: (handler) => {
      const options = { ...tlsHardening, cert: tls.cert, key: tls.key };
      server = createServer(options, (request, response) => {
        // Also on what Fastify writes by itself, such as its 503 while closing.
        for (const [name, value] of Object.entries(tlsHeaders)) response.setHeader(name, value);
        handler(request, response);
      });
      return server;
    },
  }) as unknown as FastifyInstance;
  app.decorateRequest('admin', undefined);
  // The API speaks JSON only: any other body, text included, is 415.
  app.removeContentTypeParser('text/plain');
  await registerSecurityHeaders(app, profile);
  app.setErrorHandler((error, request, reply) => {
    const known = toCitadelError(error);
    if (known.code === 'internal_error') request.log.error({ err: error }, 'http:failed');
    else if (known.code === 'not_ready') request.log.debug('http:not-ready');
    else if (known.status >= 500) request.log.warn({ code: known.code }, 'http:unavailable');
    else request.log.info({ code: known.code, path: pathOf(request.url) }, 'http:refused');
    if (known.retryAfterMs !== undefined) {
      reply.header('Retry-After', String(Math.max(1, Math.ceil(known.retryAfterMs / 1_000))));
    }
    return reply.code(known.status).send(known.toBody());
  });
  app.setNotFoundHandler((_request, reply) => {
    const error = new CitadelError('not_found');
    return reply.code(404).send(error.toBody());
  });
  app.addHook('onRequest', async (request) => {
    if (carriesCredential(new URL(request.url, 'https://localhost'))) throw credentialInUrl();
  });
  registerHealthRoutes(app, deps);
  registerMetricsRoute(app, deps);
  registerEnrollRoutes(app, deps);
  registerAgentRoutes(app, deps);
  registerThreatRoutes(app, deps);
  registerAdminRoutes(app, deps);
  await app.ready();
  return { app, server: server! };
}

/** A request's path without its query: queries may carry what should not be logged. */
function pathOf(url: string): string {
  const cut = url.indexOf('?');
  return cut === -1 ? url : url.slice(0, cut);
}

/** Fastify's own errors (bad JSON, body too large) mapped onto the catalogue. */
function toCitadelError(error: unknown): CitadelError {
  if (isCitadelError(error)) return error;
  const fastifyError = error as { statusCode?: number; code?: string; message?: string };
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new CitadelError('payload_too_large');
  }
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new CitadelError('unsupported_media_type');
  }
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500) {
    return new CitadelError('invalid_request', { message: fastifyError.message });
  }
  return new CitadelError('internal_error', { cause: error });
}
