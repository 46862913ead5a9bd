/**
 * Running as a service: the systemd notification protocol against a socket
 * of the test's own (READY=1 only once serving, watchdog pings, STOPPING=1),
 * and the Prometheus metrics.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/ports.ts';

let db: TestDatabase;
let daemon: RunningDaemon;
let metricsPort: number;
const notifySocketPath = path.join(tempDir('notify'), 'notify.sock');
const notifications: Array<{ text: string; at: number }> = [];
let receiver: ChildProcess;

beforeAll(async () => {
  receiver = spawn(
    'python3',
    [path.join(import.meta.dirname, '../support/notify-receiver.py'), notifySocketPath],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve) => {
    let pending = '';
    receiver.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const message = JSON.parse(line) as { listening?: string; text?: string };
        if (message.listening) resolve();
        if (message.text !== undefined) notifications.push({ text: message.text, at: Date.now() });
      }
    });
  });
  db = await createTestDatabase();
  metricsPort = await freePort();
  daemon = await startDaemon({
    databaseUrl: db.url,
    env: {
      NOTIFY_SOCKET: notifySocketPath,
      WATCHDOG_USEC: '400000',
      CITADEL_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    },
  });
});

afterAll(async () => {
  await daemon?.stop();
  receiver?.kill();
  await db?.drop();
});

describe('the systemd notification protocol', () => {
  it('sends READY=1 only after the listeners are bound and the database is migrated', async () => {
    await expect.poll(() => notifications.some((n) => n.text.includes('READY=1'))).toBe(true);
    const ready = notifications.find((n) => n.text.includes('READY=1'))!;
    // The status line names the ports already bound when READY=1 was sent.
    expect(ready.text).toContain(`STATUS=serving on ${daemon.httpsPort}`);
    expect(ready.text).toContain(`MAINPID=${daemon.process.pid}`);
    expect(notifications.filter((n) => n.text.includes('READY=1'))).toHaveLength(1);
    const readyz = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/readyz');
    expect(readyz.status).toBe(200);
  });

  it('pings the watchdog from the event loop at half of WATCHDOG_USEC', async () => {
    const before = notifications.filter((n) => n.text.includes('WATCHDOG=1')).length;
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const after = notifications.filter((n) => n.text.includes('WATCHDOG=1')).length;
    expect(after - before).toBeGreaterThanOrEqual(4);
    expect(after - before).toBeLessThanOrEqual(7);
  });
});

describe('the metrics', () => {
  it('serve Prometheus text to admins on /metrics and refuse other roles', async () => {
    const admin = bootstrapAdminToken(daemon);
    const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      body: { hostname: 'metrics-host', enrollment_secret: bootstrapSecret(daemon) },
    });
    const socket = await openSocket(
      wssUrl(daemon.baseUrl, '/api/v1/agent'),
      daemon.ca,
      enrolled.body.token,
    );
    socket.send({ type: 'heartbeat' });
    await socket.next((m) => m.type === 'heartbeat_ack');
    socket.send('not json');
    await socket.next((m) => m.type === 'error');

    // The heartbeat is acked at once and reaches the database with the next flush.
    await expect.poll(() => fetchMetrics(admin)).toMatch(/^citadel_agents\{status="active"\} 1$/m);
    const response = await fetchMetrics(admin);
    expect(response).toMatch(/^citadel_agent_sessions 1$/m);
    expect(response).toMatch(/^citadel_agent_messages_total\{type="heartbeat"\} 1$/m);
    expect(response).toMatch(/^citadel_agent_messages_total\{type="invalid"\} 1$/m);
    expect(response).toMatch(/^citadel_write_queue_depth\{kind="threats"\} 0$/m);
    expect(response).toMatch(/^citadel_write_commit_seconds_count [1-9]\d*$/m);
    expect(response).toMatch(/^citadel_bcrypt_wait_seconds_count [1-9]\d*$/m);
    expect(response).toMatch(/^citadel_tls_certificate_expiry_timestamp_seconds \d+$/m);
    expect(response).toMatch(/^citadel_process_resident_memory_bytes \d+/m);

    const viewer = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/admin-tokens', {
      token: admin,
      body: { name: 'metrics-viewer', role: 'viewer' },
    });
    const refused = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/metrics', {
      token: viewer.body.token,
    });
    expect(refused.status).toBe(403);
    await socket.close();
  });

  it('serve the same text on the separate metrics listener, without credentials', async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^citadel_agent_sessions \d+$/m);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/api/v1/agents`)).status).toBe(404);
  });
});

describe('stopping', () => {
  it('tells systemd STOPPING=1 when shutdown starts, then exits 0', async () => {
    daemon.process.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(notifications.some((n) => n.text.includes('STOPPING=1'))).toBe(true);
  });
});

async function fetchMetrics(token: string): Promise<string> {
  const response = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/metrics', { token });
  expect(response.status).toBe(200);
  return response.body as string;
}
