/**
 * Transport security of a development daemon, over real sockets on loopback:
 * what the plain-HTTP listener serves, HSTS only over TLS, the security
 * headers on every kind of answer (a 500 from a vanished database included),
 * and the TLS versions and ciphers the HTTPS listener accepts.
 */
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { httpsJson } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { expectSecurityHeaders } from '../support/headers.ts';
import { headersOf, plainRequest, rawExchange } from '../support/raw-http.ts';
import { handshake, makeCertificate } from '../support/tls.ts';

const publicHost = 'citadel.example.test:8443';

let db: TestDatabase;
let daemon: RunningDaemon;

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url, env: { CITADEL_PUBLIC_HOST: publicHost } });
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

const upgradeRequest = (path: string) =>
  [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n');

describe('the plain-HTTP listener in development', () => {
  it('serves a request whose both ends are loopback, without HSTS', async () => {
    const response = await plainRequest({
      host: '127.0.0.1',
      port: daemon.httpPort,
      path: '/healthz',
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
    expectSecurityHeaders(response.headers);
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('serves a loopback request the same whatever Host and forwarding headers claim', async () => {
    const forged = await plainRequest({
      host: '127.0.0.1',
      port: daemon.httpPort,
      path: '/healthz',
      headers: {
        host: 'attacker.example',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-host': 'attacker.example',
        'x-forwarded-proto': 'https',
      },
    });
    expect(forged.status).toBe(200);
    expect(forged.headers['location']).toBeUndefined();
    // X-Forwarded-Proto from a peer outside TRUSTED_PROXIES does not make it HTTPS.
    expect(forged.headers['strict-transport-security']).toBeUndefined();
  });

  it('answers a request the parser refuses with 400 and the security headers', async () => {
    const raw = await rawExchange(
      { host: '127.0.0.1', port: daemon.httpPort },
      'NOT A REQUEST\r\n\r\n',
    );
    const answer = headersOf(raw);
    expect(answer.status).toBe(400);
    expectSecurityHeaders(answer.headers);
    expect(answer.headers['strict-transport-security']).toBeUndefined();
  });
});

describe('answers over HTTPS', () => {
  it('carry HSTS with the development max-age of one hour and no other directive', async () => {
    const response = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/healthz');
    expect(response.status).toBe(200);
    expect(response.headers['strict-transport-security']).toBe('max-age=3600');
    expectSecurityHeaders(response.headers);
  });

  it('carry the security headers on a 404, a 400 and a 401 alike', async () => {
    const notFound = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/no/such/thing');
    const badJson = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      rawBody: '{"hostname": ',
    });
    const unauthorized = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/api/v1/agents');
    expect([notFound.status, badJson.status, unauthorized.status]).toEqual([404, 400, 401]);
    for (const response of [notFound, badJson, unauthorized]) {
      expectSecurityHeaders(response.headers);
      expect(response.headers['strict-transport-security']).toBe('max-age=3600');
    }
  });

  it('carry the security headers and HSTS on refused socket upgrades', async () => {
    const target = { host: '127.0.0.1', port: daemon.httpsPort, tls: { ca: daemon.ca } };
    const noToken = headersOf(await rawExchange(target, upgradeRequest('/api/v1/agent')));
    const noRoute = headersOf(await rawExchange(target, upgradeRequest('/api/v1/nowhere')));
    expect(noToken.status).toBe(401);
    expect(noRoute.status).toBe(404);
    for (const answer of [noToken, noRoute]) {
      expectSecurityHeaders(answer.headers);
      expect(answer.headers['strict-transport-security']).toBe('max-age=3600');
    }
  });

  it('answer a request the parser refuses with 400, the security headers and HSTS', async () => {
    const raw = await rawExchange(
      { host: '127.0.0.1', port: daemon.httpsPort, tls: { ca: daemon.ca } },
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n',
    );
    const answer = headersOf(raw);
    expect(answer.status).toBe(400);
    expectSecurityHeaders(answer.headers);
    expect(answer.headers['strict-transport-security']).toBe('max-age=3600');
  });
});

describe('the TLS listener', () => {
  let legacy: TlsServer | undefined;

  afterAll(() => {
    legacy?.close();
  });

  const tls11 = {
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.1',
    ciphers: 'DEFAULT@SECLEVEL=0',
  } as const;

  it('refuses a TLS 1.1 handshake that a permissive server would accept', async () => {
    // The control: these client options do complete TLS 1.1 with a server that allows it.
    const dir = tempDir('legacy-tls');
    const certificate = await makeCertificate(dir, 'legacy', 30);
    legacy = createTlsServer({
      cert: certificate.cert,
      key: certificate.key,
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    legacy.on('secureConnection', (socket) => socket.end());
    await new Promise<void>((resolve) => legacy!.listen(0, '127.0.0.1', resolve));
    const port = (legacy.address() as { port: number }).port;
    expect((await handshake(port, tls11)).protocol).toBe('TLSv1.1');

    await expect(handshake(daemon.httpsPort, tls11)).rejects.toMatchObject({
      code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/),
    });
  });

  it('accepts TLS 1.2 with an AEAD cipher and refuses TLS 1.2 with a CBC one', async () => {
    const modern = await handshake(daemon.httpsPort, {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
    });
    expect(modern).toMatchObject({ protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    await expect(
      handshake(daemon.httpsPort, {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384@SECLEVEL=0',
      }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER/) });
  });

  it('negotiates TLS 1.3 with a client that offers it', async () => {
    expect((await handshake(daemon.httpsPort)).protocol).toBe('TLSv1.3');
  });
});

describe('cert info', () => {
  it('prints the development certificate the daemon presents, with no warning', async () => {
    const presented = await handshake(daemon.httpsPort);
    const run = await runCli(['cert', 'info'], { CITADEL_DATA_DIR: daemon.dataDir });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain(`fingerprint: ${presented.fingerprint}`);
    expect(run.stdout).toMatch(/^subject: +CN=localhost$/m);
    expect(run.stdout).toMatch(/^issuer: +CN=localhost$/m);
    expect(run.stdout).toMatch(/^SANs: +DNS:localhost, IP Address:127\.0\.0\.1/m);
    expect(run.stdout).toMatch(/^valid until: +\S+Z \((36[45]) days left\)$/m);
  });
});

describe('when the database is gone', () => {
  let lostDb: TestDatabase;
  let orphan: RunningDaemon;

  beforeAll(async () => {
    lostDb = await createTestDatabase();
    orphan = await startDaemon({ databaseUrl: lostDb.url });
  });

  afterAll(async () => {
    await orphan?.stop('SIGKILL');
    await lostDb?.drop();
  });

  it('answers 500 and a not-ready 503 that still carry every security header', async () => {
    const token = bootstrapAdminToken(orphan);
    const before = await httpsJson(orphan.baseUrl, orphan.ca, 'GET', '/api/v1/agents', { token });
    expect(before.status).toBe(200);

    await lostDb.drop();
    const failed = await httpsJson(orphan.baseUrl, orphan.ca, 'GET', '/api/v1/agents', { token });
    const notReady = await httpsJson(orphan.baseUrl, orphan.ca, 'GET', '/readyz');

    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('internal_error');
    expect(notReady.status).toBe(503);
    for (const response of [failed, notReady]) {
      expectSecurityHeaders(response.headers);
      expect(response.headers['strict-transport-security']).toBe('max-age=3600');
    }
  });
});
