/**
 * Several daemons, one database: two and three real daemon processes on one
 * PostgreSQL, real agents and feed subscribers on their sockets. Every
 * daemon shares one TLS certificate, as daemons behind one load balancer
 * would.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/ports.ts';
import { ResilientAgent } from '../support/resilient-agent.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';

const cleanups: Array<() => Promise<unknown>> = [];
let certificate: TestCertificate;

beforeAll(async () => {
  certificate = await makeCertificate(tempDir('cluster-tls'), 'shared', 30);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function startFleetDaemon(
  db: TestDatabase,
  env: Record<string, string> = {},
  launch: { dataDir?: string; databaseUrl?: string } = {},
): Promise<RunningDaemon> {
  const daemon = await startDaemon({
    databaseUrl: launch.databaseUrl ?? db.url,
    ...(launch.dataDir ? { dataDir: launch.dataDir } : {}),
    env: { TLS_CERT_FILE: certificate.certFile, TLS_KEY_FILE: certificate.keyFile, ...env },
  });
  cleanups.push(() => daemon.stop('SIGKILL'));
  return daemon;
}

function daemonIdOf(daemon: RunningDaemon): string {
  const taken = daemon.entries().find((e) => e['msg'] === 'cluster:lease-taken');
  return taken?.['daemonId'] as string;
}

async function enroll(daemon: RunningDaemon, secret: string, machineId?: string) {
  const response = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
    body: {
      hostname: `node-${randomUUID().slice(0, 8)}`,
      enrollment_secret: secret,
      ...(machineId ? { machine_id: machineId } : {}),
    },
  });
  expect(response.status).toBe(201);
  return response.body as { agent_id: string; token: string };
}

async function connectAgent(daemon: RunningDaemon, token: string): Promise<TestSocket> {
  const socket = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, token);
  await socket.next((m) => m.type === 'welcome');
  return socket;
}

async function subscribe(daemon: RunningDaemon, token: string, since?: string) {
  const feed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, token);
  feed.send({ type: 'subscribe', ...(since === undefined ? {} : { since }) });
  await feed.next((m) => m.type === 'subscribed');
  return feed;
}

function threatFrame() {
  return {
    type: 'threat',
    id: randomUUID(),
    threat_type: 'cluster.probe',
    severity: 5,
    title: 'probe',
    details: {},
    detected_at: new Date().toISOString(),
  };
}

/** Sends `count` reports in a burst and waits for every ack; returns their ids in order. */
async function report(agent: TestSocket, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const frame = threatFrame();
    ids.push(frame.id);
    agent.send(frame);
  }
  for (const id of ids) await agent.next((m) => m.type === 'ack' && m.id === id, 15_000);
  return ids;
}

/** Milliseconds until `check` first holds, polled every 250 ms; rejects after `limitMs`. */
async function timeUntil(check: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the condition did not hold within ${limitMs} ms`);
}

function threatsOn(feed: TestSocket): any[] {
  return feed.messages.filter((m) => m.type === 'threat');
}

async function statusOf(db: TestDatabase, agentId: string): Promise<string> {
  const rows = await db.query('SELECT status FROM agents WHERE id = $1', [agentId]);
  return rows.rows[0]!.status;
}

describe('three daemons on one database', () => {
  let db: TestDatabase;
  let daemons: RunningDaemon[];
  let secret: string;
  let admin: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const env = { CITADEL_THREAT_BUDGET_PER_HOUR: '20' };
    const first = await startFleetDaemon(db, env);
    daemons = [first, await startFleetDaemon(db, env), await startFleetDaemon(db, env)];
    secret = bootstrapSecret(first);
    admin = bootstrapAdminToken(first);
  });

  it('delivers a threat stored through any daemon to every feed on every daemon, once, in order per agent', async () => {
    const feeds = await Promise.all(daemons.map((d) => subscribe(d, admin)));
    const sent = new Map<string, string[]>();
    await Promise.all(
      daemons.flatMap((daemon) =>
        [0, 1].map(async () => {
          const enrolled = await enroll(daemon, secret);
          const agent = await connectAgent(daemon, enrolled.token);
          sent.set(enrolled.agent_id, await report(agent, 15));
          await agent.close();
        }),
      ),
    );
    for (const feed of feeds) {
      await expect.poll(() => threatsOn(feed).length, { timeout: 10_000 }).toBe(90);
      const received = threatsOn(feed);
      const cursors = received.map((m) => Number(m.cursor));
      expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
      expect(new Set(cursors).size).toBe(90);
      for (const [agentId, ids] of sent) {
        expect(received.filter((m) => m.agent_id === agentId).map((m) => m.report_id)).toEqual(ids);
      }
    }

    const target = threatsOn(feeds[0]!)[0];
    const patched = await httpsJson(
      daemons[1]!.baseUrl,
      daemons[1]!.ca,
      'PATCH',
      `/api/v1/threats/${target.id}`,
      { token: admin, body: { status: 'acknowledged' } },
    );
    expect(patched.status).toBe(200);
    for (const feed of feeds) {
      const updated = await feed.next((m) => m.type === 'threat_updated' && m.id === target.id);
      expect(updated.status).toBe('acknowledged');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const feed of feeds) {
      expect(feed.messages.filter((m) => m.type === 'threat_updated')).toHaveLength(1);
      await feed.close();
    }
  });

  it('lets a feed subscriber resume from its last cursor on another daemon and miss nothing', async () => {
    const [a, b, c] = daemons as [RunningDaemon, RunningDaemon, RunningDaemon];
    const enrolled = await enroll(a, secret);
    const first = await subscribe(a, admin);
    let agent = await connectAgent(b, enrolled.token);
    const before = await report(agent, 6);
    await expect.poll(() => threatsOn(first).length).toBe(6);
    const lastCursor = threatsOn(first).at(-1).cursor as string;
    await first.close();

    const missed = await report(agent, 6);
    await agent.close();
    const resumed = await subscribe(c, admin, lastCursor);
    agent = await connectAgent(a, enrolled.token);
    const live = await report(agent, 6);
    await expect.poll(() => threatsOn(resumed).length).toBe(12);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(threatsOn(resumed).map((m) => m.report_id)).toEqual([...missed, ...live]);
    expect(before).toHaveLength(6);
    await agent.close();
    await resumed.close();
  });

  it('keeps only the newest session of an agent connected to two daemons, closing the older with 4409', async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    const enrolled = await enroll(a, secret);
    const older = await connectAgent(a, enrolled.token);
    const newer = await connectAgent(b, enrolled.token);
    const closed = await Promise.race([
      older.closed,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2_000)),
    ]);
    expect(closed?.code).toBe(4409);
    const claim = await db.query('SELECT daemon_id FROM agent_sessions WHERE agent_id = $1', [
      enrolled.agent_id,
    ]);
    expect(claim.rows[0]!.daemon_id).toBe(daemonIdOf(b));
    // The newer session's status reaches the database with b's next flush.
    await expect.poll(() => statusOf(db, enrolled.agent_id)).toBe('active');
    // Daemon a records the older session's offline when it sees the close, and
    // writes it with its next batch. A threat acked by a commit on a, reported
    // after that close, proves that batch has gone by.
    await expect
      .poll(() =>
        a
          .entries()
          .some((e) => e['msg'] === 'session:closed' && e['agentId'] === enrolled.agent_id),
      )
      .toBe(true);
    const probe = await connectAgent(a, (await enroll(a, secret)).token);
    await report(probe, 1);
    await probe.close();
    expect(newer.ws.readyState).toBe(newer.ws.OPEN);
    // The older session's offline is not the last word: the daemon holding the agent decides.
    expect(await statusOf(db, enrolled.agent_id)).toBe('active');
    await newer.close();
    await expect.poll(() => statusOf(db, enrolled.agent_id)).toBe('offline');
  });

  it('leaves exactly one open session per agent when each connects to two daemons at once', async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    const agents = await Promise.all(Array.from({ length: 8 }, () => enroll(a, secret)));
    // Either session may lose the race before its welcome, so wait for the
    // welcome or the close, whichever comes.
    const openOrClosed = async (daemon: RunningDaemon, token: string) => {
      const socket = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, token);
      await Promise.race([socket.next((m) => m.type === 'welcome'), socket.closed]);
      return socket;
    };
    const pairs = await Promise.all(
      agents.map((agent) =>
        Promise.all([openOrClosed(a, agent.token), openOrClosed(b, agent.token)]),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    for (const pair of pairs) {
      const open = pair.filter((socket) => socket.ws.readyState === socket.ws.OPEN);
      expect(open).toHaveLength(1);
      const closedOne = pair.find((socket) => socket !== open[0])!;
      expect((await closedOne.closed).code).toBe(4409);
    }
    await Promise.all(pairs.flat().map((socket) => socket.close()));
  });

  it('closes an agent session held by another daemon within a second of its revocation', async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    const enrolled = await enroll(a, secret);
    const session = await connectAgent(b, enrolled.token);
    const started = Date.now();
    const revoked = await httpsJson(
      a.baseUrl,
      a.ca,
      'POST',
      `/api/v1/agents/${enrolled.agent_id}/revoke`,
      { token: admin },
    );
    expect(revoked.status).toBe(200);
    const closed = await session.closed;
    expect(closed.code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('closes the older session on another daemon when the agent re-enrolls, and keeps the new one', async () => {
    const [a, b, c] = daemons as [RunningDaemon, RunningDaemon, RunningDaemon];
    const machineId = `machine-${randomUUID()}`;
    const first = await enroll(a, secret, machineId);
    const old = await connectAgent(c, first.token);
    const again = await enroll(a, secret, machineId);
    expect(again.agent_id).toBe(first.agent_id);
    expect((await old.closed).code).toBe(4401);
    const fresh = await connectAgent(b, again.token);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fresh.ws.readyState).toBe(fresh.ws.OPEN);
    await fresh.close();
  });

  it('closes feed sockets on every daemon within a second of an admin token revocation', async () => {
    const [a, b, c] = daemons as [RunningDaemon, RunningDaemon, RunningDaemon];
    const created = await httpsJson(a.baseUrl, a.ca, 'POST', '/api/v1/admin-tokens', {
      token: admin,
      body: { name: 'cluster-viewer', role: 'viewer' },
    });
    expect(created.status).toBe(201);
    const feed = await subscribe(c, created.body.token);
    const started = Date.now();
    const revoked = await httpsJson(
      b.baseUrl,
      b.ca,
      'POST',
      `/api/v1/admin-tokens/${created.body.id}/revoke`,
      { token: admin },
    );
    expect(revoked.status).toBe(200);
    expect((await feed.closed).code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('carries the per-agent threat budget with the agent when it moves to another daemon', async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    const enrolled = await enroll(a, secret);
    let agent = await connectAgent(a, enrolled.token);
    await report(agent, 12);
    await agent.close();
    agent = await connectAgent(b, enrolled.token);
    await report(agent, 8);
    const over = threatFrame();
    agent.send(over);
    const refused = await agent.next((m) => m.type === 'error' && m.ref === over.id);
    expect(refused.code).toBe('rate_limited');
    await agent.close();
  });

  it('recovers from a terminated LISTEN connection and catches up on what it missed', async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    const feed = await subscribe(b, admin);
    const enrolled = await enroll(a, secret);
    const agent = await connectAgent(a, enrolled.token);
    const restored = b.waitForLog('cluster:listen-restored', 30_000);
    const terminated = await db.query(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
      [`citadel-archer listen ${daemonIdOf(b)}`],
    );
    expect(terminated.rows).toEqual([{ ok: true }]);
    const ids = await report(agent, 10);
    await restored;
    await expect.poll(() => threatsOn(feed).length, { timeout: 10_000 }).toBe(10);
    expect(threatsOn(feed).map((m) => m.report_id)).toEqual(ids);
    expect(b.log()).toContain('cluster:listen-lost');
    await agent.close();
    await feed.close();
  });
});

describe('a LISTEN connection cut silently', () => {
  it('is noticed within 30 seconds, re-established, and the gap filled by cursor', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const pgUrl = new URL(db.url);
    const proxy = new TcpProxy(() => [Number(pgUrl.port || 5432)]);
    const proxyPort = await proxy.listen();
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxyPort);

    const direct = await startFleetDaemon(db);
    const cut = await startFleetDaemon(db, {}, { databaseUrl: viaProxy.toString() });
    const admin = bootstrapAdminToken(direct);
    const feed = await subscribe(cut, admin);
    const enrolled = await enroll(direct, bootstrapSecret(direct));
    const agent = await connectAgent(direct, enrolled.token);

    const lost = cut.waitForLog('cluster:listen-lost', 30_000);
    expect(proxy.freeze(`citadel-archer listen ${daemonIdOf(cut)}`)).toBe(1);
    const frozenAt = Date.now();
    const ids = await report(agent, 10);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(threatsOn(feed)).toHaveLength(0);

    await lost;
    expect(Date.now() - frozenAt).toBeLessThan(30_000);
    await cut.waitForLog('cluster:listen-restored', 15_000);
    await expect.poll(() => threatsOn(feed).length, { timeout: 10_000 }).toBe(10);
    expect(threatsOn(feed).map((m) => m.report_id)).toEqual(ids);

    const after = await report(agent, 3);
    await expect.poll(() => threatsOn(feed).length).toBe(13);
    expect(
      threatsOn(feed)
        .slice(10)
        .map((m) => m.report_id),
    ).toEqual(after);
    await agent.close();
    await feed.close();
  }, 90_000);
});

describe('kill -9 of one daemon while its agents move to the others', () => {
  const heartbeatS = 5;
  const env = {
    CITADEL_HEARTBEAT_INTERVAL_S: String(heartbeatS),
    CITADEL_THREAT_BUDGET_PER_HOUR: 'off',
  };

  it('moves its agents to the survivors without losing an acked threat, and the survivors mark the stranded ones offline', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const daemons = [
      await startFleetDaemon(db, env),
      await startFleetDaemon(db, env),
      await startFleetDaemon(db, env),
    ];
    const [doomed, survivor] = daemons as [RunningDaemon, RunningDaemon];
    let live = daemons.map((d) => d.httpsPort);
    const balancer = new TcpProxy(() => live);
    const balancerPort = await balancer.listen();
    cleanups.push(() => balancer.close());
    const secret = bootstrapSecret(doomed);
    const feed = await subscribe(survivor, bootstrapAdminToken(doomed));

    const agents: ResilientAgent[] = [];
    for (let i = 0; i < 9; i += 1) {
      const enrolled = await enroll(doomed, secret);
      const url = `wss://127.0.0.1:${balancerPort}/api/v1/agent`;
      agents.push(new ResilientAgent(url, certificate.cert, enrolled.token));
    }
    for (const agent of agents) {
      agent.start();
      agent.heartbeatEvery(4_500);
    }
    await expect.poll(() => agents.every((a) => a.isOpen), { timeout: 10_000 }).toBe(true);
    // Agents that die with their daemon: connected straight to it, never reconnecting.
    const stranded = await Promise.all([0, 1].map(() => enroll(doomed, secret)));
    const strandedSockets = await Promise.all(stranded.map((s) => connectAgent(doomed, s.token)));
    await expect
      .poll(async () => Promise.all(stranded.map((s) => statusOf(db, s.agent_id))))
      .toEqual(['active', 'active']);

    const streaming = setInterval(() => {
      for (const agent of agents) agent.report();
    }, 100);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    live = live.filter((port) => port !== doomed.httpsPort);
    await doomed.stop('SIGKILL');
    const strandedOfflineAfterMs = timeUntil(async () => {
      const statuses = await Promise.all(stranded.map((s) => statusOf(db, s.agent_id)));
      return statuses.every((status) => status === 'offline');
    }, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    clearInterval(streaming);

    await expect
      .poll(() => agents.reduce((n, a) => n + a.unacked.size, 0), { timeout: 30_000 })
      .toBe(0);
    expect(agents.filter((a) => a.connects >= 2).length).toBeGreaterThanOrEqual(3);
    const acked = agents.flatMap((a) => [...a.acked]);
    const stored = await db.query(
      'SELECT count(DISTINCT report_id)::int AS n, count(*)::int AS rows FROM threats',
    );
    expect(stored.rows[0]).toEqual({ n: acked.length, rows: acked.length });
    await expect
      .poll(() => new Set(threatsOn(feed).map((m) => m.report_id)).size, { timeout: 10_000 })
      .toBe(acked.length);
    expect(threatsOn(feed)).toHaveLength(acked.length);

    // The contract's liveness deadline: three heartbeat intervals.
    expect(await strandedOfflineAfterMs).toBeLessThan(heartbeatS * 3_000);
    expect(strandedSockets.every((s) => s.ws.readyState !== s.ws.OPEN)).toBe(true);
    const moved = await db.query(
      'SELECT count(*)::int AS n FROM agents a JOIN agent_sessions s ON s.agent_id = a.id ' +
        "WHERE a.status = 'active' AND s.daemon_id <> $1",
      [daemonIdOf(doomed)],
    );
    expect(moved.rows[0]!.n).toBe(9);

    // A daemon starting now leaves the agents of the live daemons alone.
    await startFleetDaemon(db, env);
    const stillActive = await db.query(
      "SELECT count(*)::int AS n FROM agents WHERE status = 'active'",
    );
    expect(stillActive.rows[0]!.n).toBe(9);
    for (const agent of agents) agent.stop();
    await feed.close();
  }, 120_000);

  it('sweeps its own earlier life at once when restarted, not after a lease', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const port = await freePort();
    const dataDir = tempDir('restarted');
    const fixed = { ...env, CITADEL_LISTEN: `127.0.0.1:${port}` };
    const other = await startFleetDaemon(db, env);
    let daemon = await startFleetDaemon(db, fixed, { dataDir });
    const secret = bootstrapSecret(other);
    const elsewhere = await enroll(other, secret);
    const kept = await connectAgent(other, elsewhere.token);
    const here = await enroll(other, secret);
    await connectAgent(daemon, here.token);
    await expect.poll(() => statusOf(db, here.agent_id)).toBe('active');

    await daemon.stop('SIGKILL');
    daemon = await startFleetDaemon(db, fixed, { dataDir });
    const taken = daemon.entries().find((e) => e['msg'] === 'cluster:lease-taken')!;
    expect(taken['earlierLives']).toBe(1);
    expect(await statusOf(db, here.agent_id)).toBe('offline');
    expect(await statusOf(db, elsewhere.agent_id)).toBe('active');
    await kept.close();
  });
});

describe('a daemon whose pool is stuck behind a lock', () => {
  it('renews its lease on a connection of its own, so no other daemon sweeps it', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    // A 2 s heartbeat gives the shortest lease: 10 s, renewed every 2.5 s.
    const env = { CITADEL_HEARTBEAT_INTERVAL_S: '2' };
    const stuck = await startFleetDaemon(db, { ...env, DB_POOL_MAX: '1' });
    const sweeper = await startFleetDaemon(db, env);
    const enrolled = await enroll(stuck, bootstrapSecret(stuck));
    const agent = await connectAgent(stuck, enrolled.token);

    // The stuck daemon's only pooled connection waits on this lock with a
    // threat batch for longer than a lease.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE threats IN ACCESS EXCLUSIVE MODE');
    const frame = threatFrame();
    agent.send(frame);
    const heartbeats = setInterval(() => agent.send({ type: 'heartbeat' }), 1_600);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    await locker.query('ROLLBACK');
    await locker.end();

    await agent.next((m) => m.type === 'ack' && m.id === frame.id, 15_000);
    clearInterval(heartbeats);
    expect(agent.ws.readyState).toBe(agent.ws.OPEN);
    expect(stuck.entries().some((e) => String(e['msg']).startsWith('cluster:lease-lost'))).toBe(
      false,
    );
    expect(sweeper.entries().some((e) => String(e['msg']).startsWith('cluster:swept'))).toBe(false);
    await agent.close();
  }, 90_000);
});
