/**
 * A staging daemon behind a TLS-terminating proxy at 127.0.0.2 (its only
 * TRUSTED_PROXIES entry). Loopback is not special outside development, so
 * plain HTTP from 127.0.0.1 is redirected; the proxy's `X-Forwarded-Proto:
 * https` is believed from 127.0.0.2 alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson } from '../support/clients.ts';
import { type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { expectSecurityHeaders } from '../support/headers.ts';
import { plainRequest } from '../support/raw-http.ts';

const publicHost = 'citadel.example.test';
const proxy = '127.0.0.2';

let db: TestDatabase;
let daemon: RunningDaemon;

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({
    databaseUrl: db.url,
    env: { ENVIRONMENT: 'staging', CITADEL_PUBLIC_HOST: publicHost, TRUSTED_PROXIES: proxy },
  });
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

const viaHttp = (from: string, headers: Record<string, string> = {}) =>
  plainRequest({
    host: '127.0.0.1',
    port: daemon.httpPort,
    path: '/healthz?probe=1',
    localAddress: from,
    headers,
  });

describe('a staging daemon behind a trusted proxy', () => {
  it('serves the proxy when it says it terminated TLS, with the staging HSTS', async () => {
    const response = await viaHttp(proxy, { 'x-forwarded-proto': 'https' });
    expect(response.localAddress).toBe(proxy);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
    expect(response.headers['strict-transport-security']).toBe('max-age=86400');
    expectSecurityHeaders(response.headers);
  });

  it('redirects the proxy when it forwarded plain HTTP, or says nothing', async () => {
    for (const headers of [
      { 'x-forwarded-proto': 'http' },
      {},
      { 'x-forwarded-proto': 'https, http' },
    ]) {
      const response = await viaHttp(proxy, headers);
      expect(response.status).toBe(308);
      expect(response.headers['location']).toBe(`https://${publicHost}/healthz?probe=1`);
    }
  });

  it('redirects a forged X-Forwarded-Proto from an untrusted loopback peer', async () => {
    const response = await viaHttp('127.0.0.1', {
      'x-forwarded-proto': 'https',
      'x-forwarded-for': proxy,
      host: 'localhost',
    });
    expect(response.localAddress).toBe('127.0.0.1');
    expect(response.status).toBe(308);
    expect(response.headers['location']).toBe(`https://${publicHost}/healthz?probe=1`);
    expect(response.headers['strict-transport-security']).toBeUndefined();
    expectSecurityHeaders(response.headers);
  });

  it('sends HSTS with the staging max-age of one day over HTTPS', async () => {
    const response = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/healthz');
    expect(response.headers['strict-transport-security']).toBe('max-age=86400');
  });
});
