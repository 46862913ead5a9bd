/**
 * The non-loopback case for real: a development daemon whose plain-HTTP
 * listener is bound to the host end of a veth pair, and a client in a network
 * namespace of the test's own at the other end. Development serves loopback
 * sockets only; whatever this client writes in its headers, it is redirected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { expectSecurityHeaders } from '../support/headers.ts';
import { createNamespace, namespacesUnavailable, type TestNamespace } from '../support/netns.ts';

const publicHost = 'citadel.example.test:8443';
const unavailable = namespacesUnavailable();
const title = unavailable
  ? `a client in another network namespace (skipped: ${unavailable})`
  : 'a client in another network namespace';

describe.skipIf(unavailable !== undefined)(title, () => {
  let db: TestDatabase;
  let daemon: RunningDaemon;
  let namespace: TestNamespace;

  beforeAll(async () => {
    namespace = await createNamespace();
    db = await createTestDatabase();
    daemon = await startDaemon({
      databaseUrl: db.url,
      env: {
        CITADEL_HTTP_LISTEN: `${namespace.hostAddress}:0`,
        CITADEL_PUBLIC_HOST: publicHost,
      },
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    await db?.drop();
    await namespace?.remove();
  });

  const fromNamespace = (method: string, path: string, headers: Record<string, string> = {}) =>
    namespace.request({
      host: namespace.hostAddress,
      port: daemon.httpPort,
      method,
      path,
      headers,
    });

  it('gets 308, not 301 or 302, to the canonical host with path and query kept', async () => {
    const response = await fromNamespace('POST', '/api/v1/enroll?attempt=2&via=ns');
    expect(response.localAddress).toBe(namespace.clientAddress);
    expect(response.status).toBe(308);
    expect(response.headers['location']).toBe(
      `https://${publicHost}/api/v1/enroll?attempt=2&via=ns`,
    );
    expect(JSON.parse(response.body).error.code).toBe('https_required');
    expectSecurityHeaders(response.headers);
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('gets the same 308 whatever Host and forwarding headers it forges', async () => {
    const forgeries: Array<Record<string, string>> = [
      { host: 'localhost' },
      { host: '127.0.0.1:8080' },
      { 'x-forwarded-for': '127.0.0.1' },
      { 'x-forwarded-host': 'localhost' },
      { 'x-forwarded-proto': 'https' },
      {
        host: 'localhost',
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-host': 'attacker.example',
        'x-forwarded-proto': 'https',
      },
    ];
    for (const headers of forgeries) {
      const response = await fromNamespace('GET', '/healthz?x=1', headers);
      expect(response.status, JSON.stringify(headers)).toBe(308);
      expect(response.headers['location']).toBe(`https://${publicHost}/healthz?x=1`);
    }
  });

  it('keeps only the path and query of an absolute-form request target', async () => {
    const response = await fromNamespace(
      'GET',
      'http://attacker.example/api/v1/agents?status=active',
    );
    expect(response.status).toBe(308);
    expect(response.headers['location']).toBe(`https://${publicHost}/api/v1/agents?status=active`);
  });
});
