/** `GET /metrics`: Prometheus text, for admin tokens. */
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import type { HttpDeps } from '../deps.ts';

export function registerMetricsRoute(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/metrics', { preHandler: requireRole(deps, 'admin') }, async (_request, reply) => {
    const text = await deps.metrics.text();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });
}
