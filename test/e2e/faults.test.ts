/**
 * Nothing acked is ever lost: the faults done for real, with row counts in
 * the database afterwards. `kill -9` of the daemon mid-load; its PostgreSQL
 * backends terminated, then PostgreSQL stopped for a minute; SIGTERM with
 * writes pending, and a second signal.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedDatabase } from '../../src/database/embedded.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { httpsJson, openSocket, wssUrl } from '../support/clients.ts';
import { bootstrapSecret, type RunningDaemon, startDaemon, tempDir } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/ports.ts';
import { ResilientAgent } from '../support/resilient-agent.ts';

const loadEnv = { CITADEL_THREAT_BUDGET_PER_HOUR: 'off' };
const cleanups: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function fleet(daemon: RunningDaemon, count: number, url = daemon.baseUrl) {
  const agents: ResilientAgent[] = [];
  for (let i = 0; i < count; i += 1) {
    const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      body: { hostname: `fault-${i}-${Date.now()}`, enrollment_secret: bootstrapSecret(daemon) },
    });
    expect(enrolled.status).toBe(201);
    agents.push(new ResilientAgent(wssUrl(url, '/api/v1/agent'), daemon.ca, enrolled.body.token));
  }
  for (const agent of agents) agent.start();
  await expect.poll(() => agents.every((a) => a.isOpen), { timeout: 10_000 }).toBe(true);
  return agents;
}

/** Every agent reports every `everyMs` until stopped. */
function stream(agents: ResilientAgent[], everyMs: number): () => void {
  const timer = setInterval(() => {
    for (const agent of agents) agent.report();
  }, everyMs);
  return () => clearInterval(timer);
}

async function expectEveryAckStoredOnce(query: TestDatabase['query'], agents: ResilientAgent[]) {
  await expect
    .poll(() => agents.reduce((n, a) => n + a.unacked.size, 0), { timeout: 60_000, interval: 250 })
    .toBe(0);
  const acked = agents.flatMap((a) => [...a.acked]);
  const rows = await query(
    'SELECT count(*)::int AS n, count(DISTINCT report_id)::int AS distinct_reports ' +
      'FROM threats WHERE report_id = ANY($1::uuid[])',
    [acked],
  );
  expect(rows.rows[0]!.n).toBe(acked.length);
  expect(rows.rows[0]!.distinct_reports).toBe(acked.length);
  const all = await query('SELECT count(*)::int AS n FROM threats');
  expect(all.rows[0]!.n).toBe(acked.length);
  return acked.length;
}

/** The threats waiting in the daemon's queue, from its credential-free metrics listener. */
async function queuedThreats(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^citadel_write_queue_depth\{kind="threats"\} (\d+)$/m.exec(text)?.[1]);
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
}

describe('kill -9 of the daemon mid-load', () => {
  it('loses no acked threat: after a restart the agents resend and each is stored once', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const port = await freePort();
    const env = { ...loadEnv, CITADEL_LISTEN: `127.0.0.1:${port}` };
    let daemon = await startDaemon({ databaseUrl: db.url, env });
    const agents = await fleet(daemon, 20);
    const stop = stream(agents, 20);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await daemon.stop('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 500));
    daemon = await startDaemon({ databaseUrl: db.url, dataDir: daemon.dataDir, env });
    cleanups.push(() => daemon.stop());
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    stop();
    const stored = await expectEveryAckStoredOnce(db.query, agents);
    expect(stored).toBeGreaterThan(1_000);
    expect(agents.every((a) => a.connects >= 2)).toBe(true);
    for (const agent of agents) agent.stop();
  });
});

describe('PostgreSQL failing under the daemon', () => {
  it('survives terminated backends and a one-minute outage without loss, duplicates or dropped sessions', async () => {
    const pgPort = await freePort();
    const server = new EmbeddedDatabase({
      dataDir: tempDir('outage-pg'),
      runAsUser: undefined,
      log: silentLogger(),
      port: pgPort,
    });
    await server.start();
    cleanups.push(() => server.stop());
    const url = server.connectionUri;
    const admin = new pg.Client({ connectionString: server.adminUri() });
    await admin.connect();
    admin.on('error', () => {});
    const query: TestDatabase['query'] = async (text, values) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await client.query(text, values);
      } finally {
        await client.end();
      }
    };

    const metricsPort = await freePort();
    const daemon = await startDaemon({
      databaseUrl: url,
      env: {
        ...loadEnv,
        CITADEL_WRITE_QUEUE_MAX: '2000',
        CITADEL_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      },
    });
    cleanups.push(() => daemon.stop());
    const agents = await fleet(daemon, 20);
    const stop = stream(agents, 50);

    for (let round = 0; round < 3; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity ' +
          "WHERE datname = 'citadel_archer' AND pid <> pg_backend_pid()",
      );
      expect(killed.rowCount).toBeGreaterThan(0);
    }
    await admin.end();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(daemon.process.exitCode).toBeNull();

    await server.stop();
    const outageStarted = Date.now();
    await expect
      .poll(async () => (await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/readyz')).status)
      .toBe(503);
    let rssAtQueueFull = 0;
    let deepestQueue = 0;
    while (Date.now() - outageStarted < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      expect(daemon.process.exitCode).toBeNull();
      expect(agents.every((a) => a.isOpen)).toBe(true);
      deepestQueue = Math.max(deepestQueue, await queuedThreats(metricsPort));
      // The queue (2,000) is full after about 5 s of 400 reports a second.
      if (Date.now() - outageStarted >= 20_000 && rssAtQueueFull === 0) {
        rssAtQueueFull = rssKb(daemon.process.pid!);
      }
    }
    const rssAtEnd = rssKb(daemon.process.pid!);
    const refusedWhileDown = agents.some((a) => a.refusals > 0);
    await server.start();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    stop();

    const stored = await expectEveryAckStoredOnce(query, agents);
    expect(stored).toBeGreaterThan(500);
    expect(agents.every((a) => a.connects === 1)).toBe(true);
    expect(refusedWhileDown).toBe(true);
    // Bounded: the queue never passes its limit, and memory does not keep
    // growing once it is full (RSS is a coarse gauge: V8 gives memory back
    // lazily, so the allowance is wide; an unbounded queue would pass it).
    expect(deepestQueue).toBeGreaterThan(1_000);
    expect(deepestQueue).toBeLessThanOrEqual(2_000);
    expect(rssAtEnd - rssAtQueueFull).toBeLessThan(192 * 1024);
    expect((await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/readyz')).status).toBe(200);
    for (const agent of agents) agent.stop();
  }, 180_000);
});

describe('SIGTERM', () => {
  async function pendingWrites(db: TestDatabase, agents: ResilientAgent[]) {
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE threats IN EXCLUSIVE MODE');
    for (let i = 0; i < 15; i += 1) for (const agent of agents) agent.report();
    await new Promise((resolve) => setTimeout(resolve, 500));
    return locker;
  }

  it('flushes a few hundred pending writes, closes every socket with 1012, exits 0 within 10 s', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const daemon = await startDaemon({ databaseUrl: db.url, env: loadEnv });
    const agents = await fleet(daemon, 20);
    const locker = await pendingWrites(db, agents);
    expect(agents.reduce((n, a) => n + a.unacked.size, 0)).toBe(300);

    const started = Date.now();
    daemon.process.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, 'x')
      .then(() => 'opened')
      .catch((error: { code?: string }) => error.code);
    expect(late).toBe('ECONNREFUSED');
    await locker.query('COMMIT');
    await locker.end();

    expect(await daemon.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const agent of agents) agent.stop();
    const firstCloses = agents.map((a) => a.closes[0]!);
    expect(firstCloses.every((c) => c.code === 1012)).toBe(true);
    expect(firstCloses.every((c) => /reconnect_after_ms=\d+/.test(c.reason))).toBe(true);
    expect(agents.reduce((n, a) => n + a.acked.size, 0)).toBe(300);
    const stored = await db.query('SELECT count(*)::int AS n FROM threats');
    expect(stored.rows[0]!.n).toBe(300);
    const log = daemon.log();
    for (const step of [
      'shutdown:queue-flushed',
      'shutdown:sockets-closed',
      'shutdown:pool-ended',
    ]) {
      expect(log).toContain(step);
    }
  });

  it('gives each agent its own reconnect delay in the close reason', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const daemon = await startDaemon({ databaseUrl: db.url, env: loadEnv });
    const sockets = [];
    for (let i = 0; i < 10; i += 1) {
      const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
        body: { hostname: `jitter-${i}`, enrollment_secret: bootstrapSecret(daemon) },
      });
      sockets.push(
        await openSocket(wssUrl(daemon.baseUrl, '/api/v1/agent'), daemon.ca, enrolled.body.token),
      );
    }
    daemon.process.kill('SIGTERM');
    const closes = await Promise.all(sockets.map((s) => s.closed));
    const delays = closes.map((c) => Number(/reconnect_after_ms=(\d+)/.exec(c.reason)?.[1]));
    expect(closes.every((c) => c.code === 1012)).toBe(true);
    expect(delays.every((d) => d >= 1_000 && d <= 11_000)).toBe(true);
    expect(new Set(delays).size).toBeGreaterThan(5);
    expect(await daemon.exited).toBe(0);
  });

  it('exits at once, and cleanly, on a second signal', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const daemon = await startDaemon({ databaseUrl: db.url, env: loadEnv });
    const agents = await fleet(daemon, 5);
    const locker = await pendingWrites(db, agents);
    const started = Date.now();
    daemon.process.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    daemon.process.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(daemon.log()).toContain('shutdown:forced');
    await locker.query('ROLLBACK');
    await locker.end();
    for (const agent of agents) agent.stop();
    const stored = await db.query('SELECT count(*)::int AS n FROM threats');
    const acked = agents.reduce((n, a) => n + a.acked.size, 0);
    expect(stored.rows[0]!.n).toBeGreaterThanOrEqual(acked);
  });
});
