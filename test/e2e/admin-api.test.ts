/**
 * The admin's side, end to end: the HTTPS API and the live feed of a real
 * daemon process, with threats sent by real agent sockets.
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

let db: TestDatabase;
let daemon: RunningDaemon;
let admin: string;
let agent: { agent_id: string; token: string };
let agentSocket: TestSocket;

const api = (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
  httpsJson(daemon.baseUrl, daemon.ca, method, path, options);

async function report(overrides: Record<string, unknown> = {}) {
  const message = {
    type: 'threat',
    id: randomUUID(),
    threat_type: 'file.integrity',
    severity: 5,
    title: '/etc/hosts changed',
    details: { path: '/etc/hosts' },
    detected_at: new Date().toISOString(),
    ...overrides,
  };
  agentSocket.send(message);
  await agentSocket.next((m) => m.type === 'ack' && m.id === message.id);
  return message;
}

async function createToken(role: string): Promise<string> {
  const created = await api('POST', '/api/v1/admin-tokens', {
    token: admin,
    body: { name: `${role}-${randomUUID().slice(0, 8)}`, role },
  });
  expect(created.status).toBe(201);
  return created.body.token;
}

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url });
  admin = bootstrapAdminToken(daemon);
  const enrolled = await api('POST', '/api/v1/enroll', {
    body: {
      hostname: 'web-01',
      enrollment_secret: bootstrapSecret(daemon),
      machine_id: 'm-web-01',
    },
  });
  agent = enrolled.body;
  agentSocket = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, agent.token);
  await agentSocket.next((m) => m.type === 'welcome');
});

afterAll(async () => {
  await agentSocket?.close();
  await daemon?.stop();
  await db?.drop();
});

describe('the admin API', () => {
  it('lists the fleet with status and last heartbeat', async () => {
    agentSocket.send({ type: 'heartbeat' });
    await agentSocket.next((m) => m.type === 'heartbeat_ack');
    await expect
      .poll(async () => (await api('GET', '/api/v1/agents?status=active', { token: admin })).body)
      .toMatchObject({ items: [{ id: agent.agent_id, hostname: 'web-01', status: 'active' }] });
    const one = await api('GET', `/api/v1/agents/${agent.agent_id}`, { token: admin });
    expect(one.body).toMatchObject({ machine_id: 'm-web-01', ip_address: '127.0.0.1' });
    expect(one.body.last_heartbeat).toEqual(expect.any(String));
  });

  it('refuses requests without a token with 401 and with a low role with 403', async () => {
    const none = await api('GET', '/api/v1/threats');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    const agentToken = await api('GET', '/api/v1/threats', { token: agent.token });
    expect(agentToken.status).toBe(401);
    const viewer = await createToken('viewer');
    const threat = await report();
    const row = await db.query('SELECT id FROM threats WHERE report_id = $1', [threat.id]);
    const patch = await api('PATCH', `/api/v1/threats/${row.rows[0]!.id}`, {
      token: viewer,
      body: { status: 'acknowledged' },
    });
    expect(patch.status).toBe(403);
    expect(patch.body.error.code).toBe('forbidden');
  });

  it('filters threats and pages through them newest first with a cursor', async () => {
    const sent = [];
    for (let i = 1; i <= 7; i += 1) sent.push(await report({ severity: i, title: `paging ${i}` }));
    const high = await api('GET', '/api/v1/threats?min_severity=5&limit=2', { token: admin });
    expect(high.status).toBe(200);
    expect(high.body.items).toHaveLength(2);
    expect(high.body.items.every((t: { severity: number }) => t.severity >= 5)).toBe(true);
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const query = `agent_id=${agent.agent_id}&limit=3${after ? `&after=${after}` : ''}`;
      const page = await api('GET', `/api/v1/threats?${query}`, { token: admin });
      seen.push(...page.body.items.map((t: { report_id: string }) => t.report_id));
      after = page.body.next;
    } while (after);
    const mine = sent.map((t) => t.id).reverse();
    expect(seen.slice(0, 7)).toEqual(mine);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects bad query values with invalid_request and a field name', async () => {
    const bad = await api('GET', '/api/v1/threats?min_severity=eleven', { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: 'invalid_request',
      details: { field: 'min_severity' },
    });
  });

  it('moves a threat open → acknowledged → resolved and refuses other moves with 409', async () => {
    const responder = await createToken('responder');
    const threat = await report();
    const id = (await db.query('SELECT id FROM threats WHERE report_id = $1', [threat.id])).rows[0]!
      .id as string;
    const skip = await api('PATCH', `/api/v1/threats/${id}`, {
      token: responder,
      body: { status: 'resolved', resolution: 'true_positive' },
    });
    expect(skip.status).toBe(409);
    expect(skip.body.error.code).toBe('invalid_transition');
    const ack = await api('PATCH', `/api/v1/threats/${id}`, {
      token: responder,
      body: { status: 'acknowledged', note: 'looking' },
    });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ status: 'acknowledged', note: 'looking' });
    expect(ack.body.acknowledged_by).toContain('admin:responder-');
    const noResolution = await api('PATCH', `/api/v1/threats/${id}`, {
      token: responder,
      body: { status: 'resolved' },
    });
    expect(noResolution.status).toBe(400);
    const resolved = await api('PATCH', `/api/v1/threats/${id}`, {
      token: responder,
      body: { status: 'resolved', resolution: 'false_positive' },
    });
    expect(resolved.body).toMatchObject({ status: 'resolved', resolution: 'false_positive' });
    expect(resolved.body.resolved_at).toEqual(expect.any(String));
    const again = await api('PATCH', `/api/v1/threats/${id}`, {
      token: responder,
      body: { status: 'acknowledged' },
    });
    expect(again.status).toBe(409);
    const audit = await db.query(
      "SELECT action FROM audit_logs WHERE event_type = 'threat.status_changed' " +
        "AND details->>'threat_id' = $1 ORDER BY seq",
      [id],
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      'open -> acknowledged',
      'acknowledged -> resolved',
    ]);
  });

  it('answers a note with a NUL character with 400 and changes nothing', async () => {
    const threat = await report();
    const id = (await db.query('SELECT id FROM threats WHERE report_id = $1', [threat.id])).rows[0]!
      .id as string;
    const refused = await api('PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      body: { status: 'acknowledged', note: 'a\u0000b' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_request');
    const row = await db.query('SELECT status FROM threats WHERE id = $1', [id]);
    expect(row.rows[0]!.status).toBe('open');
  });

  it('refuses a move back to open with 409, and an unknown status with 400', async () => {
    const threat = await report();
    const id = (await db.query('SELECT id FROM threats WHERE report_id = $1', [threat.id])).rows[0]!
      .id as string;
    const openToOpen = await api('PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      body: { status: 'open' },
    });
    expect(openToOpen.status).toBe(409);
    expect(openToOpen.body.error).toMatchObject({
      code: 'invalid_transition',
      details: { from: 'open', to: 'open' },
    });
    await api('PATCH', `/api/v1/threats/${id}`, { token: admin, body: { status: 'acknowledged' } });
    const back = await api('PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      body: { status: 'open' },
    });
    expect(back.status).toBe(409);
    expect(back.body.error.code).toBe('invalid_transition');
    const unknown = await api('PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      body: { status: 'closed' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({
      code: 'invalid_request',
      details: { field: 'status' },
    });
    const row = await db.query('SELECT status FROM threats WHERE id = $1', [id]);
    expect(row.rows[0]!.status).toBe('acknowledged');
  });

  it('answers a form or text body with 415 unsupported_media_type, changing nothing', async () => {
    const threat = await report();
    const id = (await db.query('SELECT id FROM threats WHERE report_id = $1', [threat.id])).rows[0]!
      .id as string;
    const form = await httpsJson(daemon.baseUrl, daemon.ca, 'PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      rawBody: 'status=acknowledged',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.body.error.code).toBe('unsupported_media_type');
    const text = await httpsJson(daemon.baseUrl, daemon.ca, 'PATCH', `/api/v1/threats/${id}`, {
      token: admin,
      rawBody: '{"status": "acknowledged"}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    const row = await db.query('SELECT status FROM threats WHERE id = $1', [id]);
    expect(row.rows[0]!.status).toBe('open');
  });

  it('answers readiness and health', async () => {
    expect((await api('GET', '/healthz')).status).toBe(200);
    expect((await api('GET', '/readyz')).body).toEqual({ status: 'ready' });
  });

  it('lists the audit trail to admins only', async () => {
    const viewer = await createToken('viewer');
    expect((await api('GET', '/api/v1/audit', { token: viewer })).status).toBe(403);
    const trail = await api('GET', '/api/v1/audit?event_type=agent.enrolled', { token: admin });
    expect(trail.body.items[0]).toMatchObject({ agent_id: agent.agent_id, result: 'success' });
  });
});

describe('the live feed', () => {
  it('streams a new threat to a subscriber within a second, then its status change', async () => {
    const feed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, admin);
    feed.send({ type: 'subscribe' });
    await feed.next((m) => m.type === 'subscribed');
    const started = Date.now();
    const threat = await report({ title: 'live one' });
    const pushed = await feed.next((m) => m.type === 'threat' && m.report_id === threat.id);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(pushed).toMatchObject({ title: 'live one', status: 'open', cursor: expect.any(String) });
    await api('PATCH', `/api/v1/threats/${pushed.id}`, {
      token: admin,
      body: { status: 'acknowledged' },
    });
    const updated = await feed.next((m) => m.type === 'threat_updated' && m.id === pushed.id);
    expect(updated.status).toBe('acknowledged');
    await feed.close();
  });

  it('replays stored threats after a cursor, filtered, then streams live ones', async () => {
    const first = await report({ severity: 9, title: 'before' });
    const cursor = (
      await db.query('SELECT seq::text AS c FROM threats WHERE report_id = $1', [first.id])
    ).rows[0]!.c as string;
    const missed = await report({ severity: 9, title: 'missed while away' });
    await report({ severity: 2, title: 'too low to see' });
    const feed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, admin);
    feed.send({ type: 'subscribe', since: cursor, min_severity: 8 });
    await feed.next((m) => m.type === 'threat' && m.report_id === missed.id);
    const live = await report({ severity: 10, title: 'after' });
    await feed.next((m) => m.type === 'threat' && m.report_id === live.id);
    const threats = feed.messages.filter((m) => m.type === 'threat');
    expect(threats.map((m) => m.title)).toEqual(['missed while away', 'after']);
    await feed.close();
  });

  it('accepts a token as the first frame and refuses a socket that never sends one', async () => {
    const browser = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca);
    browser.send({ type: 'auth', token: admin });
    await browser.next((m) => m.type === 'authenticated');
    browser.send({ type: 'subscribe' });
    await browser.next((m) => m.type === 'subscribed');
    await browser.close();
    const wrong = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca);
    wrong.send({ type: 'auth', token: agent.token });
    expect((await wrong.closed).code).toBe(4401);
  });

  it('refuses a bad token in the header at the upgrade with 401', async () => {
    const status = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, 'cad_nope')
      .then(() => 0)
      .catch((error: { status?: number }) => error.status);
    expect(status).toBe(401);
  });
});
