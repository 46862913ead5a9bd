/**
 * The agent's side of the daemon, end to end: a real daemon process, real TLS
 * sockets, a fresh PostgreSQL database for the suite.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import { bootstrapSecret, type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let daemon: RunningDaemon;

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url });
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

let hostCounter = 0;

async function enroll(hostname = `host-${++hostCounter}`) {
  const response = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
    body: { hostname, enrollment_secret: bootstrapSecret(daemon) },
  });
  expect(response.status).toBe(201);
  return response.body as { agent_id: string; token: string; heartbeat_interval_s: number };
}

async function connect(token: string): Promise<TestSocket> {
  const socket = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, token);
  await socket.next((m) => m.type === 'welcome');
  return socket;
}

function threat(overrides: Record<string, unknown> = {}) {
  return {
    type: 'threat',
    id: randomUUID(),
    threat_type: 'ssh.bruteforce',
    severity: 7,
    title: 'Repeated SSH failures',
    details: { source: '203.0.113.9', attempts: 12 },
    detected_at: new Date().toISOString(),
    ...overrides,
  };
}

describe('the agent session', () => {
  it('enrolls with the bootstrap secret and receives a welcome on the socket', async () => {
    const enrolled = await enroll();
    expect(enrolled.token).toMatch(/^cat_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/);
    const socket = await connect(enrolled.token);
    const welcome = socket.messages[0];
    expect(welcome).toMatchObject({ type: 'welcome', agent_id: enrolled.agent_id });
    expect(welcome.heartbeat_interval_s).toBe(60);
    const stored = await db.query('SELECT token_hash FROM agent_tokens WHERE agent_id = $1', [
      enrolled.agent_id,
    ]);
    expect(stored.rows[0]!.token_hash).toMatch(/^\$2[aby]\$04\$/);
    expect(stored.rows[0]!.token_hash).not.toContain(enrolled.token.slice(-43));
    await socket.close();
  });

  it('refuses enrollment with a wrong secret with 401 and stores no agent', async () => {
    const before = await db.query('SELECT count(*)::int AS n FROM agents');
    const secret = bootstrapSecret(daemon);
    const wrong = `${secret.slice(0, -4)}AAAA`;
    const response = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      body: { hostname: 'intruder', enrollment_secret: wrong },
    });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe('enrollment_refused');
    const after = await db.query('SELECT count(*)::int AS n FROM agents');
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  it('refuses a bad token at the upgrade with 401 and starts no session', async () => {
    const enrolled = await enroll();
    const tampered = `${enrolled.token.slice(0, -1)}${enrolled.token.endsWith('A') ? 'B' : 'A'}`;
    const opened = () => daemon.entries().filter((e) => e['msg'] === 'session:opened').length;
    const sessionsBefore = opened();
    for (const token of [tampered, 'garbage', `${enrolled.token}x`, undefined]) {
      const refused = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, token)
        .then(() => 0)
        .catch((error: { status?: number }) => error.status);
      expect(refused).toBe(401);
    }
    expect(opened()).toBe(sessionsBefore);
  });

  it('answers a heartbeat and records it as the last heartbeat', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    socket.send({ type: 'heartbeat' });
    await socket.next((m) => m.type === 'heartbeat_ack');
    await expect
      .poll(async () => {
        const row = await db.query('SELECT status, last_heartbeat FROM agents WHERE id = $1', [
          enrolled.agent_id,
        ]);
        return row.rows[0];
      })
      .toMatchObject({ status: 'active', last_heartbeat: expect.any(Date) });
    await socket.close();
  });

  it('acks a threat only once it is stored, and stores a repeated report once', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    const report = threat();
    socket.send(report);
    await socket.next((m) => m.type === 'ack' && m.id === report.id);
    const rows = await db.query('SELECT * FROM threats WHERE report_id = $1', [report.id]);
    expect(rows.rowCount).toBe(1);
    expect(rows.rows[0]).toMatchObject({
      agent_id: enrolled.agent_id,
      severity: 7,
      status: 'open',
    });

    socket.send(report);
    await expect.poll(() => socket.messages.filter((m) => m.id === report.id).length).toBe(2);
    const again = await db.query('SELECT count(*)::int AS n FROM threats WHERE report_id = $1', [
      report.id,
    ]);
    expect(again.rows[0]!.n).toBe(1);
    await socket.close();
  });

  it('answers malformed messages with invalid_message error frames and stores nothing', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    const bad = threat({ severity: 11 });
    socket.send('{not json');
    socket.send(bad);
    socket.send({ type: 'launch_missiles' });
    const errors = await expect
      .poll(() => socket.messages.filter((m) => m.type === 'error'))
      .toHaveLength(3);
    void errors;
    const codes = socket.messages.filter((m) => m.type === 'error').map((m) => m.code);
    expect(codes).toEqual(['invalid_message', 'invalid_message', 'invalid_message']);
    expect(socket.messages.find((m) => m.ref === bad.id)).toBeDefined();
    const rows = await db.query('SELECT count(*)::int AS n FROM threats WHERE agent_id = $1', [
      enrolled.agent_id,
    ]);
    expect(rows.rows[0]!.n).toBe(0);
    await socket.close();
  });

  it('refuses reports the database could not store, and keeps storing everyone else’s', async () => {
    const enrolled = await enroll();
    const other = await enroll();
    const socket = await connect(enrolled.token);
    const healthy = await connect(other.token);
    const poisons = [
      threat({ title: 'nul \u0000 inside' }),
      threat({ details: { s: '\udfff' } }),
      threat({ details: JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`) }),
    ];
    for (const poison of poisons) socket.send(poison);
    for (const poison of poisons) {
      const refusal = await socket.next((m) => m.type === 'error' && m.ref === poison.id);
      expect(refusal.code).toBe('invalid_message');
    }
    const report = threat();
    healthy.send(report);
    await healthy.next((m) => m.type === 'ack' && m.id === report.id);
    const stored = await db.query('SELECT count(*)::int AS n FROM threats WHERE agent_id = $1', [
      enrolled.agent_id,
    ]);
    expect(stored.rows[0]!.n).toBe(0);
    await socket.close();
    await healthy.close();
  });

  it('refuses a report with a time or number that PostgreSQL or JSON cannot hold', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    const yearZero = threat({ detected_at: '0000-01-01T00:00:00Z' });
    const infinite = threat({ details: {} });
    const prototype = threat({ details: {} });
    socket.send(yearZero);
    socket.send(JSON.stringify(infinite).replace('"details":{}', '"details":{"n":1e999}'));
    socket.send(JSON.stringify(prototype).replace('"details":{}', '"details":{"__proto__":{}}'));
    for (const [poison, why] of [
      [yearZero, /detected_at: must be a time from 1970 to 9999/],
      [infinite, /details\.n is not a finite number/],
      [prototype, /a key in details is __proto__/],
    ] as const) {
      const refusal = await socket.next((m) => m.type === 'error' && m.ref === poison.id);
      expect(refusal.code).toBe('invalid_message');
      expect(refusal.message).toMatch(why);
    }
    const ok = threat({ detected_at: '1970-01-01T00:00:00Z' });
    socket.send(ok);
    await socket.next((m) => m.type === 'ack' && m.id === ok.id);
    const stored = await db.query('SELECT report_id FROM threats WHERE agent_id = $1', [
      enrolled.agent_id,
    ]);
    expect(stored.rows.map((r) => r.report_id)).toEqual([ok.id]);
    await socket.close();
  });

  it('closes a socket that keeps sending invalid messages with 1008', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    for (let i = 0; i < 5; i += 1) socket.send('[]');
    expect((await socket.closed).code).toBe(1008);
  });

  it('closes a 100 KiB frame with 1009 and keeps serving other agents', async () => {
    const big = await enroll();
    const other = await enroll();
    const socket = await connect(big.token);
    socket.send(threat({ details: { blob: 'x'.repeat(100 * 1024) } }));
    expect((await socket.closed).code).toBe(1009);
    const healthy = await connect(other.token);
    const report = threat();
    healthy.send(report);
    await healthy.next((m) => m.type === 'ack' && m.id === report.id);
    await healthy.close();
  });

  it('acks and stores 200 threats from 20 agents in fewer transactions than threats', async () => {
    const agents = await Promise.all(Array.from({ length: 20 }, () => enroll()));
    const sockets = await Promise.all(agents.map((a) => connect(a.token)));
    const sent: string[] = [];
    for (let round = 0; round < 10; round += 1) {
      for (const socket of sockets) {
        const report = threat({ title: `burst ${round}` });
        sent.push(report.id);
        socket.send(report);
      }
    }
    await expect
      .poll(() =>
        sockets.reduce((n, s) => n + s.messages.filter((m) => m.type === 'ack').length, 0),
      )
      .toBe(200);
    const stored = await db.query(
      'SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS transactions ' +
        'FROM threats WHERE report_id = ANY($1::uuid[])',
      [sent],
    );
    expect(stored.rows[0]!.n).toBe(200);
    expect(stored.rows[0]!.transactions).toBeLessThan(200);
    expect(stored.rows[0]!.transactions).toBeLessThanOrEqual(40);
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('marks an agent offline in the database when its socket closes', async () => {
    const enrolled = await enroll();
    const socket = await connect(enrolled.token);
    socket.send({ type: 'heartbeat' });
    await socket.next((m) => m.type === 'heartbeat_ack');
    await socket.close();
    await expect
      .poll(async () => {
        const row = await db.query('SELECT status FROM agents WHERE id = $1', [enrolled.agent_id]);
        return row.rows[0]!.status;
      })
      .toBe('offline');
  });

  it('closes the older session with 4409 when the agent connects again', async () => {
    const enrolled = await enroll();
    const first = await connect(enrolled.token);
    const second = await connect(enrolled.token);
    expect((await first.closed).code).toBe(4409);
    second.send({ type: 'heartbeat' });
    await second.next((m) => m.type === 'heartbeat_ack');
    await expect
      .poll(async () => {
        const row = await db.query('SELECT status FROM agents WHERE id = $1', [enrolled.agent_id]);
        return row.rows[0]!.status;
      })
      .toBe('active');
    await second.close();
  });
});
