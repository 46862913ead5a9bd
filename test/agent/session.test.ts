import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/agent/outbox.ts';
import { parseReportLine, type ThreatReport } from '../../src/agent/report.ts';
import { AgentSession, type SessionSettings } from '../../src/agent/session.ts';
import { type Clock, ManualClock, systemClock } from '../../src/clock/clock.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { FakeDaemon, FrameLog, send, welcome } from './fake-daemon.ts';

let daemon: FakeDaemon;
let scratch: string;
let outbox: Outbox;
let session: AgentSession | undefined;
let savedTokens: Array<{ token: string; expiresAt: string }>;

beforeAll(async () => {
  daemon = await FakeDaemon.start();
});

afterAll(async () => {
  await daemon.stop();
});

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'citadel-session-'));
  outbox = (await Outbox.open(join(scratch, 'outbox'))).outbox;
  savedTokens = [];
  daemon.decideUpgrade = () => undefined;
});

afterEach(async () => {
  session?.close();
  await session?.ended;
  session = undefined;
  await rm(scratch, { recursive: true, force: true });
});

function open(overrides: Partial<SessionSettings> = {}): AgentSession {
  session = new AgentSession({
    url: new URL(`${daemon.url.replace('https:', 'wss:')}/api/v1/agent`),
    token: 'cat_1_secret',
    trust: { kind: 'pin', fingerprint: daemon.certificate.fingerprint },
    outbox,
    clock: systemClock,
    logger: silentLogger(),
    random: () => 0.5,
    lastHeartbeatAtMs: undefined,
    onToken: async (token, expiresAt) => {
      savedTokens.push({ token, expiresAt });
    },
    onHeartbeat: () => {},
    ...overrides,
  });
  session.start();
  return session;
}

function report(title: string): ThreatReport {
  return parseReportLine(JSON.stringify({ threat_type: 'test', severity: 5, title }));
}

async function accepted() {
  const { socket, request } = await daemon.nextConnection();
  return { socket, request, frames: new FrameLog(socket) };
}

describe('AgentSession', () => {
  it('presents its token in the Authorization header of the upgrade', async () => {
    open();
    const { request } = await accepted();
    expect(request.headers.authorization).toBe('Bearer cat_1_secret');
    expect(request.url).toBe('/api/v1/agent');
  });

  it('sends pending reports in order after the welcome and forgets each on its ack', async () => {
    const reports = [report('one'), report('two'), report('three')];
    for (const each of reports) await outbox.add(each);
    open();
    const { socket, frames } = await accepted();
    send(socket, welcome());

    const sent = [
      await frames.next('threat'),
      await frames.next('threat'),
      await frames.next('threat'),
    ];
    expect(sent.map((frame) => frame['id'])).toEqual(reports.map((each) => each.id));
    expect(sent[0]).toEqual({ type: 'threat', ...reports[0] });

    send(socket, { type: 'ack', id: reports[0]!.id });
    send(socket, { type: 'ack', id: reports[1]!.id });
    await expect.poll(() => outbox.size).toBe(1);
    expect(outbox.pending()).toEqual([reports[2]]);
    expect(await readdir(join(scratch, 'outbox'))).toHaveLength(1);
  });

  it('sends nothing before the welcome', async () => {
    await outbox.add(report('early'));
    open();
    const { socket, frames } = await accepted();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(frames.frames).toEqual([]);
    send(socket, welcome());
    expect((await frames.next('threat'))['title']).toBe('early');
  });

  it('keeps a report refused as rate limited and sends it again after the given delay', async () => {
    const refused = report('limited');
    await outbox.add(refused);
    open();
    const { socket, frames } = await accepted();
    send(socket, welcome());
    await frames.next('threat');

    const refusedAt = Date.now();
    send(socket, {
      type: 'error',
      code: 'rate_limited',
      message: 'over',
      ref: refused.id,
      retry_after_ms: 300,
    });
    const again = await frames.next('threat');
    expect(again['id']).toBe(refused.id);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(250);
    expect(outbox.has(refused.id)).toBe(true);
  });

  it('sets aside a report the server calls invalid and goes on with the next', async () => {
    const bad = report('bad');
    const good = report('good');
    await outbox.add(bad);
    await outbox.add(good);
    open({ maxInFlight: 1 });
    const { socket, frames } = await accepted();
    send(socket, welcome());
    expect((await frames.next('threat'))['id']).toBe(bad.id);

    send(socket, { type: 'error', code: 'invalid_message', message: 'no', ref: bad.id });
    expect((await frames.next('threat'))['id']).toBe(good.id);
    expect(outbox.has(bad.id)).toBe(false);
    expect(await readdir(join(scratch, 'outbox', 'rejected'))).toHaveLength(1);
  });

  it('keeps no more than the in-flight window unacknowledged', async () => {
    const reports = Array.from({ length: 5 }, (_, index) => report(`r${index}`));
    for (const each of reports) await outbox.add(each);
    open({ maxInFlight: 2 });
    const { socket, frames } = await accepted();
    send(socket, welcome());
    await frames.next('threat');
    await frames.next('threat');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(frames.ofType('threat')).toHaveLength(2);

    send(socket, { type: 'ack', id: reports[0]!.id });
    expect((await frames.next('threat'))['id']).toBe(reports[2]!.id);
  });

  it('sends a report submitted while the session is open', async () => {
    const live = open();
    const { socket, frames } = await accepted();
    send(socket, welcome());
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fresh = report('fresh');
    await outbox.add(fresh);
    live.notifyReports();
    expect((await frames.next('threat'))['id']).toBe(fresh.id);
  });

  it('asks for a new token on token_expiring and hands the answer over to be saved', async () => {
    open();
    const { socket, frames } = await accepted();
    send(socket, welcome());
    const soon = new Date(Date.now() + 3_600_000).toISOString();
    const later = new Date(Date.now() + 86_400_000).toISOString();
    send(socket, { type: 'token_expiring', expires_at: soon });
    await frames.next('refresh');
    send(socket, { type: 'token_expiring', expires_at: soon });
    send(socket, { type: 'token', token: 'cat_1_newer', expires_at: later });
    await expect.poll(() => savedTokens).toEqual([{ token: 'cat_1_newer', expiresAt: later }]);
    expect(frames.ofType('refresh')).toHaveLength(1);
  });

  it('ends as refused with the status when the upgrade answers 401', async () => {
    daemon.decideUpgrade = () => 401;
    const end = await open().ended;
    expect(end).toEqual({ kind: 'refused', status: 401 });
  });

  it('ends as closed with the code and reason the server closed with', async () => {
    const live = open();
    const { socket } = await accepted();
    send(socket, welcome());
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.close(1012, 'restarting; reconnect_after_ms=1500');
    expect(await live.ended).toMatchObject({
      kind: 'closed',
      code: 1012,
      reason: 'restarting; reconnect_after_ms=1500',
      welcomed: true,
    });
  });

  it('refreshes on its own shortly before expiry when no notice comes', async () => {
    open({ refreshLeadMs: 10 * 60_000 });
    const { socket, frames } = await accepted();
    const expiresAt = new Date(Date.now() + 10 * 60_000 + 200).toISOString();
    send(socket, welcome({ token_expires_at: expiresAt }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(frames.ofType('refresh')).toHaveLength(0);
    await frames.next('refresh');
  });

  it('closes with 1000 when asked to stop', async () => {
    const live = open();
    const { socket } = await accepted();
    send(socket, welcome());
    const serverSaw = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    live.close();
    expect(await serverSaw).toBe(1000);
  });

  it('ends as failed with tls_pin_mismatch when the certificate is not the pinned one', async () => {
    const end = await open({ trust: { kind: 'pin', fingerprint: '0'.repeat(64) } }).ended;
    expect(end.kind).toBe('failed');
    expect(end.kind === 'failed' && end.error.code).toBe('tls_pin_mismatch');
  });
});

describe('AgentSession heartbeats', () => {
  function openOnClock(clock: Clock, lastHeartbeatAtMs?: number): AgentSession {
    return open({ clock, random: () => 0.25, lastHeartbeatAtMs, onHeartbeat: () => {} });
  }

  it('beats first at a random phase of the interval, then on the interval', async () => {
    const clock = new ManualClock();
    openOnClock(clock);
    const { socket, frames } = await accepted();
    send(socket, welcome({ heartbeat_interval_s: 60 }));
    await expect.poll(() => clock.pendingTimers).toBeGreaterThan(0);

    clock.advance(14_999);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(frames.ofType('heartbeat')).toHaveLength(0);
    clock.advance(1);
    await frames.next('heartbeat');
    clock.advance(60_000);
    await frames.next('heartbeat');
    expect(frames.ofType('heartbeat')).toHaveLength(2);
  });

  it('waits a full interval after the last heartbeat of an earlier session', async () => {
    const clock = new ManualClock();
    clock.advance(100_000);
    openOnClock(clock, 90_000);
    const { socket, frames } = await accepted();
    send(socket, welcome({ heartbeat_interval_s: 60 }));
    await expect.poll(() => clock.pendingTimers).toBeGreaterThan(0);

    clock.advance(49_999);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(frames.ofType('heartbeat')).toHaveLength(0);
    clock.advance(1);
    await frames.next('heartbeat');
  });
});
