import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AgentSettings, ReferenceAgent } from '../../src/agent/agent.ts';
import { isClientError } from '../../src/agent/errors.ts';
import { parseReportLine } from '../../src/agent/report.ts';
import { systemClock } from '../../src/clock/clock.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { FakeDaemon, FrameLog, type RecordedRequest, send, welcome } from './fake-daemon.ts';

const agentId = 'c0ffee00-0000-4000-8000-000000000001';

let daemon: FakeDaemon;
let stateDirectory: string;
let issued: number;
let agents: ReferenceAgent[];

beforeAll(async () => {
  daemon = await FakeDaemon.start();
});

afterAll(async () => {
  await daemon.stop();
});

beforeEach(async () => {
  stateDirectory = join(await mkdtemp(join(tmpdir(), 'citadel-agent-')), 'state');
  issued = 0;
  agents = [];
  daemon.requests.length = 0;
  daemon.upgrades.length = 0;
  daemon.decideUpgrade = () => undefined;
  daemon.route('POST', '/api/v1/enroll', (request) => issue(request));
});

afterEach(async () => {
  for (const agent of agents) agent.stop();
  await rm(join(stateDirectory, '..'), { recursive: true, force: true });
});

function issue(request: RecordedRequest) {
  const body = request.body as { enrollment_secret?: string };
  if (body.enrollment_secret !== 'enroll-me') {
    return { status: 401, body: { error: { code: 'enrollment_refused', message: 'no' } } };
  }
  issued += 1;
  return {
    status: 201,
    body: {
      agent_id: agentId,
      token: `cat_a_token${issued}`,
      token_expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      heartbeat_interval_s: 60,
    },
  };
}

function makeAgent(overrides: Partial<AgentSettings> = {}): ReferenceAgent {
  const agent = new ReferenceAgent({
    server: new URL(daemon.url),
    trust: { kind: 'pin', fingerprint: daemon.certificate.fingerprint },
    stateDirectory,
    hostname: 'web-01',
    machineId: 'machine-0001',
    readEnrollmentSecret: async () => 'enroll-me',
    logger: silentLogger(),
    clock: systemClock,
    backoff: { initialMs: 20, capMs: 80, floorMs: 0 },
    ...overrides,
  });
  agents.push(agent);
  return agent;
}

async function started(overrides: Partial<AgentSettings> = {}) {
  const agent = makeAgent(overrides);
  await agent.start();
  const running = agent.run();
  running.catch(() => {});
  return { agent, running };
}

function enrollRequests(): RecordedRequest[] {
  return daemon.requests.filter((request) => request.path === '/api/v1/enroll');
}

describe('ReferenceAgent', () => {
  it('enrolls once, keeps its token privately on disk, and connects with it', async () => {
    await started();
    const { request } = await daemon.nextConnection();
    expect(request.headers.authorization).toBe('Bearer cat_a_token1');
    expect(enrollRequests()[0]?.body).toEqual({
      hostname: 'web-01',
      enrollment_secret: 'enroll-me',
      machine_id: 'machine-0001',
    });

    const identityFile = join(stateDirectory, 'identity.json');
    expect((await stat(identityFile)).mode & 0o777).toBe(0o600);
    expect((await stat(stateDirectory)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(identityFile, 'utf8'))).toMatchObject({
      agent_id: agentId,
      token: 'cat_a_token1',
    });
  });

  it('does not enroll again after a restart with the same state directory', async () => {
    const first = await started();
    await daemon.nextConnection();
    first.agent.stop();
    await first.running;

    await started({ readEnrollmentSecret: async () => undefined });
    const { request } = await daemon.nextConnection();
    expect(request.headers.authorization).toBe('Bearer cat_a_token1');
    expect(enrollRequests()).toHaveLength(1);
  });

  it('enrolls again on 4401 when it has a secret, and reconnects with the new token', async () => {
    await started();
    const { socket } = await daemon.nextConnection();
    socket.close(4401, 'token revoked');

    const { request } = await daemon.nextConnection();
    expect(request.headers.authorization).toBe('Bearer cat_a_token2');
    const saved = JSON.parse(await readFile(join(stateDirectory, 'identity.json'), 'utf8'));
    expect(saved.token).toBe('cat_a_token2');
  });

  it('stops with identity_rejected on a 401 upgrade without a secret, keeping its identity', async () => {
    const first = await started();
    await daemon.nextConnection();
    first.agent.stop();
    await first.running;
    const before = await readFile(join(stateDirectory, 'identity.json'), 'utf8');

    daemon.decideUpgrade = () => 401;
    const { running } = await started({ readEnrollmentSecret: async () => undefined });
    const outcome = await running.catch((error: unknown) => error);
    expect(isClientError(outcome, 'identity_rejected')).toBe(true);
    expect(await readFile(join(stateDirectory, 'identity.json'), 'utf8')).toBe(before);
  });

  it('keeps its identity and retries when the server fails or cannot be reached', async () => {
    const first = await started();
    await daemon.nextConnection();
    first.agent.stop();
    await first.running;
    const before = await readFile(join(stateDirectory, 'identity.json'), 'utf8');

    let refusals = 0;
    daemon.decideUpgrade = () => (refusals++ < 3 ? 503 : undefined);
    await started();
    const { request } = await daemon.nextConnection();
    expect(refusals).toBe(4);
    expect(request.headers.authorization).toBe('Bearer cat_a_token1');
    expect(enrollRequests()).toHaveLength(1);
    expect(await readFile(join(stateDirectory, 'identity.json'), 'utf8')).toBe(before);
  });

  it('stops with enrollment_refused when the secret is refused, writing no identity', async () => {
    const { running } = await started({ readEnrollmentSecret: async () => 'wrong' });
    const outcome = await running.catch((error: unknown) => error);
    expect(isClientError(outcome, 'enrollment_refused')).toBe(true);
    await expect(stat(join(stateDirectory, 'identity.json'))).rejects.toThrow(/ENOENT/);
  });

  it('retries enrollment after a server error and after the Retry-After of a 429', async () => {
    const answers = [
      { status: 503, body: { error: { code: 'storage_unavailable', message: 'db' } } },
      {
        status: 429,
        body: { error: { code: 'rate_limited', message: 'slow down' } },
        headers: { 'retry-after': '1' },
      },
    ];
    daemon.route('POST', '/api/v1/enroll', (request) => answers.shift() ?? issue(request));
    const startedAt = Date.now();
    await started();
    await daemon.nextConnection();
    expect(enrollRequests()).toHaveLength(3);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_000);
  });

  it('stops at once on a pinned certificate mismatch, without retrying', async () => {
    const { running } = await started({ trust: { kind: 'pin', fingerprint: 'f'.repeat(64) } });
    const outcome = await running.catch((error: unknown) => error);
    expect(isClientError(outcome, 'tls_pin_mismatch')).toBe(true);
    expect(daemon.requests).toHaveLength(0);
  });

  it('waits the reconnect_after_ms of a restart close instead of its own backoff', async () => {
    await started({ backoff: { initialMs: 20_000, capMs: 60_000, floorMs: 10_000 } });
    const { socket } = await daemon.nextConnection();
    send(socket, welcome());
    await new Promise((resolve) => setTimeout(resolve, 50));

    const closedAt = Date.now();
    socket.close(1012, 'restarting; reconnect_after_ms=400');
    await daemon.nextConnection();
    const waited = Date.now() - closedAt;
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(waited).toBeLessThan(5_000);
  });

  it('sends an unacknowledged report again after a reconnect, and again after a restart', async () => {
    const first = await started();
    const report = parseReportLine('{"threat_type":"ssh_bruteforce","severity":7,"title":"t"}');
    await first.agent.submit(report);

    const one = await daemon.nextConnection();
    const framesOne = new FrameLog(one.socket);
    send(one.socket, welcome());
    expect((await framesOne.next('threat'))['id']).toBe(report.id);
    one.socket.close(1001, 'going away; reconnect_after_ms=10');

    const two = await daemon.nextConnection();
    const framesTwo = new FrameLog(two.socket);
    send(two.socket, welcome());
    expect((await framesTwo.next('threat'))['id']).toBe(report.id);
    first.agent.stop();
    await first.running;

    await started();
    const three = await daemon.nextConnection();
    const framesThree = new FrameLog(three.socket);
    send(three.socket, welcome());
    expect((await framesThree.next('threat'))['id']).toBe(report.id);
    send(three.socket, { type: 'ack', id: report.id });
    await expect.poll(() => agents.at(-1)?.outbox.size).toBe(0);
  });

  it('closes its session with 1000 and resolves run() when stopped', async () => {
    const { agent, running } = await started();
    const { socket } = await daemon.nextConnection();
    send(socket, welcome());
    const serverSaw = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    agent.stop();
    await expect(running).resolves.toBeUndefined();
    expect(await serverSaw).toBe(1000);
  });
});
