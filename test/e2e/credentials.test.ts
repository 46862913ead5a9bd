/**
 * Credentials, roles and the audit trail on a live daemon: every endpoint and
 * both sockets against every kind of bad or insufficient credential, token
 * expiry and refresh on the actor's timer, revocation reaching live sessions,
 * re-enrollment, the append-only audit table, and logs free of secrets.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const tokenTtlS = 12;
let db: TestDatabase;
let daemon: RunningDaemon;
let admin: string;
const secretsUsed = new Set<string>();

const api = (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
  httpsJson(daemon.baseUrl, daemon.ca, method, path, options);

function remember<T extends string>(secret: T): T {
  secretsUsed.add(secret);
  return secret;
}

async function enroll(hostname: string, machineId?: string) {
  const response = await api('POST', '/api/v1/enroll', {
    body: {
      hostname,
      enrollment_secret: bootstrapSecret(daemon),
      ...(machineId ? { machine_id: machineId } : {}),
    },
  });
  expect(response.status).toBe(201);
  remember(response.body.token);
  return response.body as { agent_id: string; token: string; token_expires_at: string };
}

async function adminToken(role: string): Promise<{ id: string; token: string }> {
  const created = await api('POST', '/api/v1/admin-tokens', {
    token: admin,
    body: { name: `${role}-${randomUUID().slice(0, 6)}`, role },
  });
  expect(created.status).toBe(201);
  remember(created.body.token);
  return created.body;
}

const socketUrl = (path: string) => wssUrl(daemon.baseUrl, path);

async function upgradeStatus(path: string, token?: string): Promise<number> {
  return openSocket(socketUrl(path), daemon.ca, token).then(
    async (socket) => {
      await socket.close();
      return 101;
    },
    (error: { status?: number }) => error.status ?? -1,
  );
}

beforeAll(async () => {
  db = await createTestDatabase({ ownRole: true });
  daemon = await startDaemon({
    databaseUrl: db.url,
    env: { CITADEL_AGENT_TOKEN_TTL_S: String(tokenTtlS) },
  });
  admin = remember(bootstrapAdminToken(daemon));
  remember(bootstrapSecret(daemon));
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('the authorization matrix', () => {
  const someId = randomUUID();
  const endpoints: Array<{ method: string; path: string; role: string; body?: unknown }> = [
    { method: 'GET', path: '/api/v1/agents', role: 'viewer' },
    { method: 'GET', path: `/api/v1/agents/${someId}`, role: 'viewer' },
    { method: 'POST', path: `/api/v1/agents/${someId}/revoke`, role: 'admin' },
    { method: 'GET', path: '/api/v1/threats', role: 'viewer' },
    { method: 'GET', path: `/api/v1/threats/${someId}`, role: 'viewer' },
    {
      method: 'PATCH',
      path: `/api/v1/threats/${someId}`,
      role: 'responder',
      body: { status: 'acknowledged' },
    },
    { method: 'GET', path: '/api/v1/audit', role: 'admin' },
    { method: 'GET', path: '/api/v1/enrollment-secrets', role: 'admin' },
    { method: 'POST', path: '/api/v1/enrollment-secrets', role: 'admin', body: { max_uses: 1 } },
    { method: 'POST', path: `/api/v1/enrollment-secrets/${someId}/revoke`, role: 'admin' },
    { method: 'GET', path: '/api/v1/admin-tokens', role: 'admin' },
    {
      method: 'POST',
      path: '/api/v1/admin-tokens',
      role: 'admin',
      body: { name: 'made-by-matrix', role: 'viewer' },
    },
    { method: 'POST', path: `/api/v1/admin-tokens/${someId}/revoke`, role: 'admin' },
  ];
  const rank: Record<string, number> = { viewer: 1, responder: 2, admin: 3 };
  let credentials: Record<string, string | undefined>;

  beforeAll(async () => {
    const agent = await enroll('matrix-agent');
    const viewer = await adminToken('viewer');
    const responder = await adminToken('responder');
    const expired = await adminToken('admin');
    await db.query(
      "UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
      [expired.id],
    );
    const revoked = await adminToken('admin');
    await api('POST', `/api/v1/admin-tokens/${revoked.id}/revoke`, { token: admin });
    const [, id, secret] = admin.split('_') as [string, string, string];
    const tail = secret.endsWith('A') ? 'B' : 'A';
    credentials = {
      none: undefined,
      malformed: 'Bearer-nonsense',
      'unknown id': `cad_${randomUUID()}_${secret}`,
      'wrong secret': `cad_${id}_${secret.slice(0, -1)}${tail}`,
      expired: expired.token,
      revoked: revoked.token,
      'agent token': agent.token,
      viewer: viewer.token,
      responder: responder.token,
      admin,
    };
  });

  for (const endpoint of endpoints) {
    it(`guards ${endpoint.method} ${endpoint.path.replace(someId, '{id}')}`, async () => {
      for (const [kind, token] of Object.entries(credentials)) {
        const response = await api(endpoint.method, endpoint.path, {
          ...(token === undefined ? {} : { token }),
          ...(endpoint.body === undefined ? {} : { body: endpoint.body }),
        });
        const role = rank[kind];
        const label = `${kind} → ${response.status} ${JSON.stringify(response.body)}`;
        if (role === undefined) {
          expect(response.status, label).toBe(401);
          expect(response.body.error.code, label).toBe('unauthorized');
        } else if (role < rank[endpoint.role]!) {
          expect(response.status, label).toBe(403);
          expect(response.body.error.code, label).toBe('forbidden');
        } else {
          expect([200, 201, 404], label).toContain(response.status);
          if (response.status === 201) remember(response.body.token ?? response.body.secret);
        }
      }
    });
  }

  it('guards the agent socket: only a live agent token opens it', async () => {
    for (const [kind, token] of Object.entries(credentials)) {
      const status = await upgradeStatus('/api/v1/agent', token);
      expect(status, kind).toBe(kind === 'agent token' ? 101 : 401);
    }
  });

  it('guards the feed socket: any admin role opens it, nothing else does', async () => {
    for (const [kind, token] of Object.entries(credentials)) {
      if (kind === 'none') continue; // without a header the socket waits for an auth frame
      const status = await upgradeStatus('/api/v1/feed', token);
      expect(status, kind).toBe(rank[kind] === undefined ? 401 : 101);
    }
  });

  it('refuses a token carried in a URL, on the API and on both sockets', async () => {
    const response = await api('GET', `/api/v1/agents?token=${admin}`);
    expect(response.status).toBe(400);
    expect(await upgradeStatus(`/api/v1/feed?access_token=${admin}`)).toBe(400);
  });
});

describe('agent tokens', () => {
  it('warns inside the refresh window and closes the session with 4401 when the token expires', async () => {
    const agent = await enroll('expiring-host');
    const started = Date.now();
    const socket = await openSocket(socketUrl('/api/v1/agent'), daemon.ca, agent.token);
    await socket.next((m) => m.type === 'token_expiring', 15_000);
    const closed = await socket.closed;
    expect(closed.code).toBe(4401);
    const lifetime = Date.parse(agent.token_expires_at) - started;
    expect(Date.now() - started).toBeGreaterThanOrEqual(lifetime - 1_000);
    expect(await upgradeStatus('/api/v1/agent', agent.token)).toBe(401);
    await expect
      .poll(async () => {
        const rows = await db.query(
          "SELECT count(*)::int AS n FROM audit_logs WHERE event_type = 'token.expired' AND agent_id = $1",
          [agent.agent_id],
        );
        return rows.rows[0]!.n;
      })
      .toBe(1);
  });

  it('refreshes over the socket, keeps the old token for a grace period, and outlives the old expiry', async () => {
    const agent = await enroll('refreshing-host');
    const socket = await openSocket(socketUrl('/api/v1/agent'), daemon.ca, agent.token);
    await socket.next((m) => m.type === 'token_expiring', 15_000);
    socket.send({ type: 'refresh' });
    const fresh = await socket.next((m) => m.type === 'token');
    remember(fresh.token);
    expect(fresh.token).not.toBe(agent.token);
    expect(Date.parse(fresh.expires_at)).toBeGreaterThan(Date.parse(agent.token_expires_at));
    const stored = await db.query('SELECT token_hash FROM agent_tokens WHERE agent_id = $1', [
      agent.agent_id,
    ]);
    for (const row of stored.rows) expect(row.token_hash).toMatch(/^\$2b\$/);
    const old = await db.query('SELECT expires_at FROM agent_tokens WHERE id = $1', [
      agent.token.split('_')[1],
    ]);
    expect(old.rows[0]!.expires_at.getTime()).toBeLessThanOrEqual(
      Date.parse(agent.token_expires_at),
    );
    const waitPastOldExpiry = Date.parse(agent.token_expires_at) - Date.now() + 1_500;
    await new Promise((resolve) => setTimeout(resolve, waitPastOldExpiry));
    socket.send({ type: 'heartbeat' });
    await socket.next((m) => m.type === 'heartbeat_ack');
    expect(await upgradeStatus('/api/v1/agent', fresh.token)).toBe(101);
    await socket.close();
  });
});

describe('revocation', () => {
  it('closes a live agent session with 4401 within a second and refuses its token after', async () => {
    const agent = await enroll('revoked-host');
    const socket: TestSocket = await openSocket(socketUrl('/api/v1/agent'), daemon.ca, agent.token);
    await socket.next((m) => m.type === 'welcome');
    const started = Date.now();
    const revoked = await api('POST', `/api/v1/agents/${agent.agent_id}/revoke`, { token: admin });
    expect(revoked.status).toBe(200);
    expect((await socket.closed).code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await upgradeStatus('/api/v1/agent', agent.token)).toBe(401);
  });

  it('closes a revoked admin token’s feed socket with 4401 and refuses it on the API', async () => {
    const viewer = await adminToken('viewer');
    const feed = await openSocket(socketUrl('/api/v1/feed'), daemon.ca, viewer.token);
    await api('POST', `/api/v1/admin-tokens/${viewer.id}/revoke`, { token: admin });
    expect((await feed.closed).code).toBe(4401);
    expect((await api('GET', '/api/v1/agents', { token: viewer.token })).status).toBe(401);
  });

  it('refuses a revoked or used-up enrollment secret', async () => {
    const created = await api('POST', '/api/v1/enrollment-secrets', {
      token: admin,
      body: { max_uses: 1, expires_in_s: 3_600 },
    });
    const secret = remember(created.body.secret as string);
    const use = (hostname: string) =>
      api('POST', '/api/v1/enroll', { body: { hostname, enrollment_secret: secret } });
    expect((await use('single-use-1')).status).toBe(201);
    const spent = await use('single-use-2');
    expect(spent.status).toBe(401);
    expect(spent.body.error.code).toBe('enrollment_refused');
    const other = await api('POST', '/api/v1/enrollment-secrets', { token: admin, body: {} });
    remember(other.body.secret);
    await api('POST', `/api/v1/enrollment-secrets/${other.body.id}/revoke`, { token: admin });
    const revoked = await api('POST', '/api/v1/enroll', {
      body: { hostname: 'too-late', enrollment_secret: other.body.secret },
    });
    expect(revoked.status).toBe(401);
  });
});

describe('agent identity', () => {
  it('keeps the agent id on re-enrollment and revokes the older token', async () => {
    const first = await enroll('db-01', 'machine-db-01');
    const second = await enroll('db-01-renamed', 'machine-db-01');
    expect(second.agent_id).toBe(first.agent_id);
    expect(await upgradeStatus('/api/v1/agent', first.token)).toBe(401);
    expect(await upgradeStatus('/api/v1/agent', second.token)).toBe(101);
    const audit = await db.query(
      "SELECT count(*)::int AS n FROM audit_logs WHERE event_type = 'agent.reenrolled' AND agent_id = $1",
      [first.agent_id],
    );
    expect(audit.rows[0]!.n).toBe(1);
  });

  it('treats two machines with one hostname but different machine ids as two agents', async () => {
    const a = await enroll('twin', 'machine-twin-a');
    const b = await enroll('twin', 'machine-twin-b');
    expect(a.agent_id).not.toBe(b.agent_id);
  });
});

describe('the audit trail', () => {
  it('records failed authentication with the source address', async () => {
    await api('GET', '/api/v1/agents', { token: 'cad_nonsense' });
    await expect
      .poll(async () => {
        const rows = await db.query(
          "SELECT details FROM audit_logs WHERE event_type = 'auth.failed' ORDER BY seq DESC LIMIT 1",
        );
        return rows.rows[0]?.details;
      })
      .toMatchObject({ source_ip: '127.0.0.1' });
  });

  it('is refused UPDATE and DELETE by the database itself, for the daemon’s own role', async () => {
    await expect(db.query("UPDATE audit_logs SET actor = 'someone else'")).rejects.toThrow(
      /append-only/,
    );
    await expect(db.query('DELETE FROM audit_logs')).rejects.toThrow(/append-only/);
    await expect(db.query('TRUNCATE audit_logs')).rejects.toThrow(/append-only/);
    const count = await db.query('SELECT count(*)::int AS n FROM audit_logs');
    expect(count.rows[0]!.n).toBeGreaterThan(0);
  });
});

describe('the logs', () => {
  it('never contain a token or secret used in this suite', () => {
    const log = daemon.log();
    expect(secretsUsed.size).toBeGreaterThan(10);
    for (const secret of secretsUsed) {
      expect(log.includes(secret), 'a credential reached the log').toBe(false);
      expect(log.includes(secret.slice(-43)), 'a secret part reached the log').toBe(false);
    }
    expect(log.toLowerCase()).not.toContain('bearer ');
  });
});
