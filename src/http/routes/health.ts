/** `GET /healthz` (the process answers) and `GET /readyz` (it can do its work). */
import type { FastifyInstance } from 'fastify';
import { CitadelError } from '../../errors/catalogue.ts';
import type { HttpDeps } from '../deps.ts';

export function registerHealthRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async () => {
    if (!(await deps.isReady())) throw new CitadelError('not_ready');
    return { status: 'ready' };
  });
}
