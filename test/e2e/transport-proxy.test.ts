/**
 * A staging daemon behind a TLS-terminating proxy at 127.0.0.2 (its only
 * TRUSTED_PROXIES entry). Loopback is not special outside development, so
 * plain HTTP from 127.0.0.1 is redirected; the proxy's `X-Forwarded-Proto:
 * https` is believed from 127.0.0.2 alone.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { httpsJson, TestSocket } from '../support/clients.ts';
import { bootstrapSecret, type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { expectSecurityHeaders } from '../support/headers.ts';
import { headersOf, plainRequest } from '../support/raw-http.ts';

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
    const claims: Array<Record<string, string>> = [
      { 'x-forwarded-proto': 'http' },
      {},
      { 'x-forwarded-proto': 'https, http' },
    ];
    for (const headers of claims) {
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

  it('passes the proxy’s socket upgrades to the agent session', async () => {
    const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      body: { hostname: 'behind-proxy', enrollment_secret: bootstrapSecret(daemon) },
    });
    expect(enrolled.status).toBe(201);
    const ws = new WebSocket(`ws://127.0.0.1:${daemon.httpPort}/api/v1/agent`, {
      localAddress: proxy,
      headers: { authorization: `Bearer ${enrolled.body.token}`, 'x-forwarded-proto': 'https' },
    });
    const session = new TestSocket(ws);
    const welcome = await session.next((m) => m.type === 'welcome');
    expect(welcome.agent_id).toBe(enrolled.body.agent_id);
    await session.close();
  });

  it('refuses the proxy’s unauthenticated upgrade with the headers and HSTS', async () => {
    const answer = headersOf(await rawUpgrade(proxy, { 'X-Forwarded-Proto': 'https' }));
    expect(answer.status).toBe(401);
    expectSecurityHeaders(answer.headers);
    expect(answer.headers['strict-transport-security']).toBe('max-age=86400');
  });

  it('redirects an upgrade from an untrusted peer, forged X-Forwarded-Proto and all', async () => {
    const answer = headersOf(await rawUpgrade('127.0.0.1', { 'X-Forwarded-Proto': 'https' }));
    expect(answer.status).toBe(308);
    expect(answer.headers['location']).toBe(`https://${publicHost}/api/v1/agent`);
    expectSecurityHeaders(answer.headers);
    expect(answer.headers['strict-transport-security']).toBeUndefined();
  });
});

/** A WebSocket upgrade request written by hand, from a chosen source address. */
function rawUpgrade(from: string, extra: Record<string, string>): Promise<string> {
  const lines = [
    'GET /api/v1/agent HTTP/1.1',
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...Object.entries(extra).map(([name, value]) => `${name}: ${value}`),
  ];
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: daemon.httpPort, localAddress: from });
    let received = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in time')));
    socket.on('connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}
