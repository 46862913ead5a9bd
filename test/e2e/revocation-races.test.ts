/**
 * Revocation racing the acts that hand an agent a working session or token:
 * a socket upgrade whose token was read just before the revocation, and a
 * refresh in flight when it lands. Each race is run many times; none may
 * leave the revoked agent a live session or a live token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let daemon: RunningDaemon;
let admin: string;

const api = (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
  httpsJson(daemon.baseUrl, daemon.ca, method, path, options);

async function enroll(hostname: string): Promise<{ agent_id: string; token: string }> {
  const response = await api('POST', '/api/v1/enroll', {
    body: { hostname, enrollment_secret: bootstrapSecret(daemon) },
  });
  expect(response.status).toBe(201);
  return response.body;
}

async function liveTokens(agentId: string): Promise<number> {
  const result = await db.query(
    'SELECT count(*)::int AS n FROM agent_tokens ' +
      'WHERE agent_id = $1 AND NOT is_revoked AND expires_at > now()',
    [agentId],
  );
  return result.rows[0]!.n;
}

/** Whether the socket is still open a second after the revocation returned. */
async function survives(socket: TestSocket | undefined): Promise<boolean> {
  if (!socket) return false;
  const closed = await Promise.race([
    socket.closed.then((c) => c.code),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1_000)),
  ]);
  if (closed !== undefined) return false;
  await socket.close();
  return true;
}

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({
    databaseUrl: db.url,
    // A slower compare widens the window between reading a token and
    // registering its session, which is what the first race needs.
    env: { CITADEL_BCRYPT_COST: '9', CITADEL_REFRESH_BUDGET_PER_HOUR: 'off' },
  });
  admin = bootstrapAdminToken(daemon);
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('a revocation racing a socket upgrade', () => {
  it('leaves no session open when it lands while the token is being checked', async () => {
    const trials = 12;
    let survivors = 0;
    for (let trial = 0; trial < trials; trial += 1) {
      const agent = await enroll(`upgrade-race-${trial}`);
      const opening = openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, agent.token)
        .then(async (socket) => {
          await socket.next((m) => m.type === 'welcome');
          return socket;
        })
        .catch(() => undefined);
      // Revoke as another daemon would, straight in the database, a little
      // after the upgrade read the token and while bcrypt checks it.
      await new Promise((resolve) => setTimeout(resolve, 5 + trial * 3));
      await db.query(
        'UPDATE agent_tokens SET is_revoked = true, revoked_at = now() WHERE agent_id = $1',
        [agent.agent_id],
      );
      await db.query(`SELECT pg_notify('citadel_revocations', $1)`, [
        JSON.stringify({ agent: agent.agent_id }),
      ]);
      if (await survives(await opening)) survivors += 1;
    }
    expect(survivors).toBe(0);
  });
});

describe('a revocation racing a refresh', () => {
  it('revokes the token the refresh issued too, and closes the session with 4401', async () => {
    const trials = 10;
    for (let trial = 0; trial < trials; trial += 1) {
      const agent = await enroll(`refresh-race-${trial}`);
      const socket = await openSocket(
        wssUrl(daemon.baseUrl, '/api/v1/agent'),
        daemon.ca,
        agent.token,
      );
      await socket.next((m) => m.type === 'welcome');
      for (let i = 0; i < 3; i += 1) socket.send({ type: 'refresh' });
      const revoked = await api('POST', `/api/v1/agents/${agent.agent_id}/revoke`, {
        token: admin,
      });
      expect(revoked.status).toBe(200);
      expect((await socket.closed).code).toBe(4401);
      // Refreshes still queued when the session closed may commit after it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await liveTokens(agent.agent_id)).toBe(0);
      for (const fresh of socket.messages.filter((m) => m.type === 'token')) {
        const refused = await openSocket(
          wssUrl(daemon.baseUrl, '/api/v1/agent'),
          daemon.ca,
          fresh.token,
        ).then(
          async (s) => {
            await s.close();
            return 101;
          },
          (error: { status?: number }) => error.status,
        );
        expect(refused).toBe(401);
      }
    }
  });
});
