/**
 * One daemon per data directory. Regression for a second `serve` on the
 * directory of a running daemon (a second `npm start`): it stopped the first
 * daemon's embedded PostgreSQL as if a crash had left it behind, and the
 * first daemon answered /readyz 503 for good. Now the newcomer is refused
 * with `data_dir_in_use` and changes nothing, whatever the database; a
 * directory left by a daemon killed with -9 is taken over at the next start.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockFileName } from '../../src/daemon/data-dir-lock.ts';
import { runCli } from '../support/cli.ts';
import { httpsJson, openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/** Running, not merely a zombie waiting for a parent that was killed to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function lockPid(dataDir: string): number {
  return JSON.parse(readFileSync(path.join(dataDir, lockFileName), 'utf8')).pid;
}

/**
 * `citadel-archer <command>` on the data directory, on ports of its own unless
 * told; a `serve` that is not refused runs on, and is killed after 30 s.
 */
function secondCommand(command: string, dataDir: string, env: Record<string, string> = {}) {
  const settings = { CITADEL_DATA_DIR: dataDir, CITADEL_LISTEN: '127.0.0.1:0', ...env };
  return runCli([command], { CITADEL_HTTP_LISTEN: 'off', ...settings }, 30_000);
}

function readyz(daemon: RunningDaemon): Promise<number> {
  return httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/readyz').then((r) => r.status);
}

async function enroll(daemon: RunningDaemon, hostname: string) {
  return httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
    body: { hostname, enrollment_secret: bootstrapSecret(daemon) },
  });
}

async function hostnames(daemon: RunningDaemon): Promise<string[]> {
  const agents = await httpsJson(daemon.baseUrl, daemon.ca, 'GET', '/api/v1/agents', {
    token: bootstrapAdminToken(daemon),
  });
  return agents.body.items.map((agent: { hostname: string }) => agent.hostname);
}

function expectRefusal(run: { code: number | null; stderr: string }, holder: RunningDaemon): void {
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('data_dir_in_use');
  expect(run.stderr).toContain(`pid ${holder.process.pid}`);
  expect(run.stderr).toContain(holder.dataDir);
}

describe('a second daemon on the data directory of one on the embedded database', () => {
  const dataDir = tempDir('one-owner');
  let first: RunningDaemon;
  let next: RunningDaemon | undefined;
  let session: TestSocket;

  beforeAll(async () => {
    first = await startDaemon({ dataDir, readyTimeoutMs: 120_000 });
    const enrolled = await enroll(first, 'before-the-second');
    expect(enrolled.status).toBe(201);
    session = await openSocket(
      wssUrl(first.baseUrl, '/api/v1/agent'),
      first.ca,
      enrolled.body.token,
    );
    await session.next((m) => m.type === 'welcome');
  });

  afterAll(async () => {
    await first.stop();
    await next?.stop();
  });

  it('is refused with data_dir_in_use, and the first keeps its database and sessions', async () => {
    const postmaster = postmasterPid(dataDir);
    const second = await secondCommand('serve', dataDir);
    expectRefusal(second, first);
    expect(second.stdout).not.toContain('embedded-db:');

    expect(postmasterPid(dataDir)).toBe(postmaster);
    expect(alive(postmaster)).toBe(true);
    expect(await readyz(first)).toBe(200);
    session.send({ type: 'heartbeat' });
    await session.next((m) => m.type === 'heartbeat_ack');
    expect((await enroll(first, 'after-the-second')).status).toBe(201);
    expect(await hostnames(first)).toContain('before-the-second');
    expect(lockPid(dataDir)).toBe(first.process.pid);
  });

  it('is refused before it binds the port the first daemon serves on', async () => {
    const second = await secondCommand('serve', dataDir, {
      CITADEL_LISTEN: `127.0.0.1:${first.httpsPort}`,
    });
    expectRefusal(second, first);
    expect(second.stderr).not.toContain('EADDRINUSE');
    expect(await readyz(first)).toBe(200);
  });

  it('refuses migrate too, which would otherwise start the embedded database again', async () => {
    const migrate = await secondCommand('migrate', dataDir);
    expectRefusal(migrate, first);
    expect(await readyz(first)).toBe(200);
    session.send({ type: 'refresh' });
    await session.next((m) => m.type === 'token');
  });

  it('takes the directory over once the first is killed with -9', async () => {
    const crashed = first.process.pid!;
    const orphan = postmasterPid(dataDir);
    await first.stop('SIGKILL');
    expect(lockPid(dataDir)).toBe(crashed);

    next = await startDaemon({ dataDir });
    const removed = next.entries().find((e) => String(e['msg']).startsWith('data-dir:stale-lock'));
    expect(removed).toMatchObject({ pid: crashed, reason: 'its process has exited' });
    expect(alive(orphan)).toBe(false);
    expect(lockPid(dataDir)).toBe(next.process.pid);
    expect(await readyz(next)).toBe(200);
    expect(await hostnames(next)).toEqual(
      expect.arrayContaining(['before-the-second', 'after-the-second']),
    );
  });

  it('gives the directory back at a clean stop', async () => {
    expect(await next!.stop()).toBe(0);
    expect(existsSync(path.join(dataDir, lockFileName))).toBe(false);
  });
});

describe('a second daemon on the data directory of one on an external database', () => {
  let db: TestDatabase;
  let first: RunningDaemon;

  beforeAll(async () => {
    db = await createTestDatabase();
    first = await startDaemon({ databaseUrl: db.url });
  });

  afterAll(async () => {
    await first?.stop();
    await db?.drop();
  });

  it('is refused as well: the claim is on the directory, whatever the database', async () => {
    const second = await secondCommand('serve', first.dataDir, { DATABASE_URL: db.url });
    expectRefusal(second, first);
    expect(await readyz(first)).toBe(200);
    expect(lockPid(first.dataDir)).toBe(first.process.pid);
  });

  it('lets migrate on the external database run: it leaves the directory alone', async () => {
    const migrate = await secondCommand('migrate', first.dataDir, {
      DATABASE_URL: db.url,
      LOG_LEVEL: 'info',
    });
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toContain('migrate:up-to-date');
    expect(lockPid(first.dataDir)).toBe(first.process.pid);
  });
});
