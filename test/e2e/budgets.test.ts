/**
 * Budgets on a live daemon with the contract's limits: 429 with Retry-After
 * on HTTP, `rate_limited` frames on the socket, keyed by agent across
 * reconnects and restarts, per IP across two daemons on one database.
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

const contractBudgets = {
  CITADEL_ENROLL_BUDGET_PER_HOUR: '5',
  CITADEL_AUTH_FAILURES_PER_10_MIN: '10',
  CITADEL_HEARTBEAT_INTERVAL_S: '60',
};
let db: TestDatabase;
let daemon: RunningDaemon;
let other: RunningDaemon | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url, env: contractBudgets });
});

afterAll(async () => {
  await other?.stop();
  await daemon?.stop();
  await db?.drop();
});

function enrollVia(target: RunningDaemon, hostname: string, forwardedFor?: string) {
  return httpsJson(target.baseUrl, target.ca, 'POST', '/api/v1/enroll', {
    body: { hostname, enrollment_secret: bootstrapSecret(daemon) },
    ...(forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {}),
  });
}

/** Agents for the socket tests, made without spending the HTTP enrollment budget. */
async function agentToken(): Promise<{ agent_id: string; token: string }> {
  const secret = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enrollment-secrets', {
    token: bootstrapAdminToken(daemon),
    body: {},
  });
  expect(secret.status).toBe(201);
  await db.query('DELETE FROM ip_budget_events');
  const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
    body: { hostname: `budget-${randomUUID().slice(0, 8)}`, enrollment_secret: secret.body.secret },
  });
  expect(enrolled.status).toBe(201);
  return enrolled.body;
}

async function connect(target: RunningDaemon, token: string): Promise<TestSocket> {
  const socket = await openSocket(wssUrl(target.baseUrl, '/api/v1/agent'), target.ca, token);
  await socket.next((m) => m.type === 'welcome');
  return socket;
}

function threat() {
  return {
    type: 'threat',
    id: randomUUID(),
    threat_type: 'test.budget',
    severity: 3,
    title: 'budget probe',
    details: {},
    detected_at: new Date().toISOString(),
  };
}

describe('the enrollment budget', () => {
  it('answers the sixth enrollment in an hour from one IP with 429 and an exact Retry-After', async () => {
    await db.query('DELETE FROM ip_budget_events');
    for (let i = 0; i < 5; i += 1) expect((await enrollVia(daemon, `ip-${i}`)).status).toBe(201);
    const refused = await enrollVia(daemon, 'ip-5');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    const oldest = await db.query(
      "SELECT extract(epoch FROM min(at) + interval '1 hour' - clock_timestamp()) AS s " +
        'FROM ip_budget_events',
    );
    const retryAfter = Number(refused.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(Math.abs(retryAfter - Number(oldest.rows[0]!.s))).toBeLessThanOrEqual(1);
  });

  it('lets the retry through once the oldest counted enrollment has left the window', async () => {
    const refused = await enrollVia(daemon, 'ip-6');
    const retryAfter = Number(refused.headers['retry-after']);
    // Simulated time: the counted enrollments age by Retry-After seconds.
    await db.query('UPDATE ip_budget_events SET at = at - make_interval(secs => $1)', [retryAfter]);
    expect((await enrollVia(daemon, 'ip-6')).status).toBe(201);
  });

  it('holds across two daemons sharing one database', async () => {
    other = await startDaemon({ databaseUrl: db.url, env: contractBudgets });
    await db.query('DELETE FROM ip_budget_events');
    for (let i = 0; i < 3; i += 1) expect((await enrollVia(daemon, `a-${i}`)).status).toBe(201);
    for (let i = 0; i < 2; i += 1) expect((await enrollVia(other, `b-${i}`)).status).toBe(201);
    expect((await enrollVia(other, 'b-2')).status).toBe(429);
    expect((await enrollVia(daemon, 'a-3')).status).toBe(429);
    await other.stop();
    other = undefined;
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    await db.query('DELETE FROM ip_budget_events');
    for (let i = 0; i < 5; i += 1) await enrollVia(daemon, `xff-${i}`, `203.0.113.${i}`);
    expect((await enrollVia(daemon, 'xff-5', '203.0.113.99')).status).toBe(429);
  });

  it('keys by the forwarded client when the peer is a trusted proxy', async () => {
    other = await startDaemon({
      databaseUrl: db.url,
      env: { ...contractBudgets, TRUSTED_PROXIES: '127.0.0.1' },
    });
    await db.query('DELETE FROM ip_budget_events');
    for (let i = 0; i < 5; i += 1) {
      expect((await enrollVia(other, `p-${i}`, '203.0.113.10')).status).toBe(201);
    }
    expect((await enrollVia(other, 'p-5', '203.0.113.10')).status).toBe(429);
    expect((await enrollVia(other, 'p-6', '203.0.113.11')).status).toBe(201);
    const ips = await db.query('SELECT DISTINCT host(ip) AS ip FROM ip_budget_events ORDER BY 1');
    expect(ips.rows.map((r) => r.ip)).toEqual(['203.0.113.10', '203.0.113.11']);
    await other.stop();
    other = undefined;
  });
});

describe('the per-agent budgets', () => {
  it('acks 100 threats in an hour, refuses the 101st with rate_limited and stores it not', async () => {
    const agent = await agentToken();
    const socket = await connect(daemon, agent.token);
    for (let i = 0; i < 100; i += 1) socket.send(threat());
    await expect.poll(() => socket.messages.filter((m) => m.type === 'ack').length).toBe(100);
    const extra = threat();
    socket.send(extra);
    const refusal = await socket.next((m) => m.type === 'error' && m.ref === extra.id);
    expect(refusal).toMatchObject({ code: 'rate_limited', retry_after_ms: expect.any(Number) });
    expect(refusal.retry_after_ms).toBeGreaterThan(3_500_000);
    expect(socket.messages.some((m) => m.type === 'ack' && m.id === extra.id)).toBe(false);
    const stored = await db.query('SELECT count(*)::int AS n FROM threats WHERE report_id = $1', [
      extra.id,
    ]);
    expect(stored.rows[0]!.n).toBe(0);

    await socket.close();
    const again = await connect(daemon, agent.token);
    const afterReconnect = threat();
    again.send(afterReconnect);
    await again.next((m) => m.type === 'error' && m.ref === afterReconnect.id);
    await again.close();

    await daemon.stop();
    daemon = await startDaemon({
      databaseUrl: db.url,
      dataDir: daemon.dataDir,
      env: contractBudgets,
    });
    const afterRestart = await connect(daemon, agent.token);
    const probe = threat();
    afterRestart.send(probe);
    const stillRefused = await afterRestart.next((m) => m.ref === probe.id);
    expect(stillRefused.code).toBe('rate_limited');
    await afterRestart.close();
  });

  it('refuses a heartbeat sent long before its interval, and the eleventh refresh in an hour', async () => {
    const agent = await agentToken();
    const socket = await connect(daemon, agent.token);
    socket.send({ type: 'heartbeat' });
    await socket.next((m) => m.type === 'heartbeat_ack');
    socket.send({ type: 'heartbeat' });
    const refused = await socket.next((m) => m.type === 'error' && m.code === 'rate_limited');
    expect(refused.retry_after_ms).toBeGreaterThan(40_000);
    expect(refused.retry_after_ms).toBeLessThanOrEqual(45_000);
    for (let i = 0; i < 11; i += 1) socket.send({ type: 'refresh' });
    await expect.poll(() => socket.messages.filter((m) => m.type === 'token').length).toBe(10);
    await expect
      .poll(() => socket.messages.filter((m) => m.code === 'rate_limited').length)
      .toBe(2);
    await socket.close();
  });

  it('audits refusals in batches, one row per budget and agent', async () => {
    const agent = await agentToken();
    const socket = await connect(daemon, agent.token);
    socket.send({ type: 'heartbeat' });
    for (let i = 0; i < 30; i += 1) socket.send({ type: 'heartbeat' });
    await expect
      .poll(() => socket.messages.filter((m) => m.code === 'rate_limited').length)
      .toBe(30);
    await socket.close();
    await daemon.stop();
    const rows = await db.query(
      "SELECT details FROM audit_logs WHERE event_type = 'budget.refused' AND agent_id = $1",
      [agent.agent_id],
    );
    expect(rows.rowCount).toBe(1);
    expect(rows.rows[0]!.details).toMatchObject({ budget: 'heartbeat', count: 30 });
    daemon = await startDaemon({
      databaseUrl: db.url,
      dataDir: daemon.dataDir,
      env: contractBudgets,
    });
  });
});

describe('the failed-authentication budget', () => {
  it('slows token guessing: after ten failures even a valid token waits', async () => {
    const agent = await agentToken();
    const url = wssUrl(daemon.baseUrl, '/api/v1/agent');
    const attempt = (token: string) =>
      openSocket(url, daemon.ca, token).then(
        async (s) => {
          await s.close();
          return 101;
        },
        (error: { status?: number }) => error.status,
      );
    for (let i = 0; i < 10; i += 1) {
      expect(await attempt(`cat_${randomUUID()}_${'A'.repeat(43)}`)).toBe(401);
    }
    expect(await attempt(agent.token)).toBe(429);
    const api = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/api/v1/agents', {
      token: bootstrapAdminToken(daemon),
    });
    expect(api.status).toBe(429);
    expect(Number(api.headers['retry-after'])).toBeGreaterThan(0);
  });
});
