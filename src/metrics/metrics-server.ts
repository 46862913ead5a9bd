/**
 * The optional metrics listener (`CITADEL_METRICS_LISTEN`): plain HTTP that
 * answers `GET /metrics` and nothing else, without credentials. Bind it to a
 * private address that only the scraper reaches.
 */
import { createServer, type Server } from 'node:http';
import type { DaemonMetrics } from './metrics.ts';

export function createMetricsServer(metrics: DaemonMetrics): Server {
  return createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ error: { code: 'not_found', message: 'No such resource.' } }));
      return;
    }
    metrics.text().then(
      (text) => {
        response.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        response.end(text);
      },
      () => {
        response.writeHead(500, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'internal_error', message: 'metrics' } }));
      },
    );
  });
}
