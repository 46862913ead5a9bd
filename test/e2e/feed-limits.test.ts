/**
 * The live feed's limits, end to end on a real daemon and real PostgreSQL:
 * what a subscriber that stops reading may cost the daemon (a replay goes at
 * the reader's pace; a live one is closed with 4429 and resumes from its
 * cursor), how many feed sockets one admin token may hold, and how a bad
 * `subscribe` is answered. Threats are inserted straight into the database:
 * the daemon replays them from there, and hears of new ones by its
 * notifications as it does of those stored through another daemon.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import { bootstrapAdminToken, type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { DaemonInspector, inspectorEnv } from '../support/inspector.ts';

/** Threats stored before the first test; each is a frame of about 1.2 KB. */
const storedThreats = 20_000;
/** Two tokens' worth of feed sockets that never read. */
const pausedSubscribers = 20;
/** What one paused subscriber may keep in the daemon: a queue of 128 KiB and a page, with room. */
const maxRetainedPerSubscriber = 1024 * 1024;

let db: TestDatabase;
let daemon: RunningDaemon;
let admin: string;
let agentId: string;
let inspector: DaemonInspector;

const api = (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
  httpsJson(daemon.baseUrl, daemon.ca, method, path, options);

async function createToken(): Promise<string> {
  const created = await api('POST', '/api/v1/admin-tokens', {
    token: admin,
    body: { name: `feed-${randomUUID().slice(0, 8)}`, role: 'viewer' },
  });
  expect(created.status).toBe(201);
  return created.body.token;
}

/** Stores threats as any daemon would; returns the newest cursor. */
async function storeThreats(count: number): Promise<string> {
  const inserted = await db.query(
    `INSERT INTO threats (agent_id, report_id, threat_type, severity, hostname, title,
       detected_at, details)
     SELECT $1, gen_random_uuid(), 'malware.detected', 5, 'feed-host', 'stored ' || n, now(),
       jsonb_build_object('padding', repeat('x', 1000))
     FROM generate_series(1, $2) AS n
     RETURNING seq`,
    [agentId, count],
  );
  return String(Math.max(...inserted.rows.map((row) => Number(row.seq))));
}

/** A feed socket that subscribes, then stops reading. `ws.resume()` reads again. */
async function pausedSubscriber(token: string, since?: string): Promise<TestSocket> {
  const feed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, token);
  feed.send({ type: 'subscribe', ...(since === undefined ? {} : { since }) });
  await feed.next((m) => m.type === 'subscribed');
  feed.ws.pause();
  return feed;
}

function logCount(msg: string): number {
  return daemon.entries().filter((entry) => entry['msg'] === msg).length;
}

function threatCursors(feed: TestSocket): number[] {
  return feed.messages.filter((m) => m.type === 'threat').map((m) => Number(m.cursor));
}

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url, env: inspectorEnv });
  inspector = await DaemonInspector.connect(daemon);
  admin = bootstrapAdminToken(daemon);
  const agent = await db.query(
    "INSERT INTO agents (hostname, identity) VALUES ('feed-host', 'host:feed-host') RETURNING id",
  );
  agentId = agent.rows[0]!.id as string;
  await storeThreats(storedThreats);
});

afterAll(async () => {
  inspector?.close();
  await daemon?.stop();
  await db?.drop();
});

describe('a feed subscriber that stops reading', () => {
  it('is replayed at its own pace, keeping little memory and missing nothing', async () => {
    const tokens = [await createToken(), await createToken()];
    const before = await inspector.retainedBytes();

    const feeds: TestSocket[] = [];
    for (let i = 0; i < pausedSubscribers; i += 1) {
      feeds.push(await pausedSubscriber(tokens[i % 2]!, '0'));
    }
    // Each replay says once when it first waits for its reader.
    await expect
      .poll(() => logCount('feed:replay-paced'), { timeout: 30_000 })
      .toBe(pausedSubscribers);
    // Unpaced, each kept its 4 MiB queue and a page: 98 MB for these 20 (5 MB paced).
    const retained = (await inspector.retainedBytes()) - before;
    expect(retained).toBeLessThan(pausedSubscribers * maxRetainedPerSubscriber);
    expect(logCount('feed:too-slow')).toBe(0);

    // Meanwhile more are stored, and two change status: the first, which every replay has
    // sent, and the newest, which none has reached.
    await storeThreats(500);
    const changed = await db.query(
      `UPDATE threats SET status = 'acknowledged'
       WHERE seq IN ((SELECT min(seq) FROM threats), (SELECT max(seq) FROM threats))
       RETURNING id`,
    );
    const changedIds = changed.rows.map((row) => row.id as string);

    // The one that reads again gets every threat, once, in order, and sees both changes.
    const reader = feeds[0]!;
    reader.ws.resume();
    const total = storedThreats + 500;
    await expect.poll(() => threatCursors(reader).length, { timeout: 30_000 }).toBe(total);
    const cursors = threatCursors(reader);
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(total);
    for (const id of changedIds) {
      await expect
        .poll(() => reader.messages.filter((m) => m.id === id).at(-1)?.status)
        .toBe('acknowledged');
    }
    for (const feed of feeds) feed.ws.terminate();
    // Gone, they leave nothing behind.
    await expect
      .poll(async () => (await inspector.retainedBytes()) - before, { timeout: 10_000 })
      .toBeLessThan(maxRetainedPerSubscriber);
  });

  it('is closed with 4429 once live threats pile up, and resumes from its cursor', async () => {
    const token = await createToken();
    const slow = await pausedSubscriber(token);
    expect(logCount('feed:too-slow')).toBe(0);

    // Over twenty megabytes of new threats: more than the kernel and 4 MiB of queue hold.
    const newest = await storeThreats(storedThreats);
    await expect.poll(() => logCount('feed:too-slow'), { timeout: 30_000 }).toBe(1);
    slow.ws.resume();
    expect((await slow.closed).code).toBe(4429);
    const received = threatCursors(slow);
    const last = received.at(-1)!;
    expect(received.length).toBeGreaterThan(0);
    expect(last).toBeLessThan(Number(newest));

    const resumed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, token);
    resumed.send({ type: 'subscribe', since: String(last) });
    await resumed.next((m) => m.type === 'threat' && m.cursor === newest, 30_000);
    const missed = await db.query('SELECT count(*)::int AS n FROM threats WHERE seq > $1', [last]);
    const rest = threatCursors(resumed);
    expect(rest[0]).toBeGreaterThan(last);
    expect(rest.length).toBe(missed.rows[0]!.n);
    await resumed.close();
  });
});

describe('feed sockets per admin token', () => {
  it('refuses a token its eleventh socket with too_many_subscribers until one closes', async () => {
    const token = await createToken();
    const url = wssUrl(daemon.baseUrl, '/api/v1/feed');
    const open: TestSocket[] = [];
    for (let i = 0; i < 10; i += 1) open.push(await openSocket(url, daemon.ca, token));

    const refused = await openSocket(url, daemon.ca, token).then(
      () => 0,
      (error: { status?: number }) => error.status,
    );
    expect(refused).toBe(429);

    const browser = await openSocket(url, daemon.ca);
    browser.send({ type: 'auth', token });
    const error = await browser.next((m) => m.type === 'error');
    expect(error.code).toBe('too_many_subscribers');
    expect((await browser.closed).code).toBe(1008);

    await open.pop()!.close();
    // The daemon counts the socket out when its side has closed too: a moment later at most.
    let again: TestSocket | undefined;
    await expect
      .poll(async () => {
        again = await openSocket(url, daemon.ca, token).catch(() => undefined);
        return again !== undefined;
      })
      .toBe(true);
    again!.send({ type: 'subscribe' });
    await again!.next((m) => m.type === 'subscribed');
    for (const feed of [...open, again!]) await feed.close();
  });
});

describe('a bad subscribe', () => {
  it('is answered with invalid_message naming the field at fault', async () => {
    const feed = await openSocket(wssUrl(daemon.baseUrl, '/api/v1/feed'), daemon.ca, admin);
    feed.send({ type: 'subscribe', min_severity: 11 });
    const error = await feed.next((m) => m.type === 'error');
    expect(error).toMatchObject({ code: 'invalid_message' });
    expect(error.message).toMatch(/^subscribe: min_severity: /);
    await feed.close();
  });
});
