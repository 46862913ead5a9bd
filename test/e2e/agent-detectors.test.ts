/**
 * The reference agent as a sensor, end to end: the real daemon on a fresh
 * database, the real `citadel-archer agent` process watching a file's
 * integrity and following a log, and an admin on the live feed. A change
 * made by the test on disk arrives as a stored threat and on the feed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSocket, type TestSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  projectRoot,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let daemon: RunningDaemon;
let scratch: string;
let watched: string;
let authLog: string;
let agent: AgentProcess;
let feed: TestSocket;

interface AgentProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves with the first log entry whose `msg` is `message`. */
  waitFor(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  output(): string;
}

function startAgent(args: readonly string[]): AgentProcess {
  const child = spawn(process.execPath, [path.join(projectRoot, 'src/main.ts'), 'agent', ...args], {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  const entries: Array<Record<string, unknown>> = [];
  let pending = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{')) entries.push(JSON.parse(line));
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child,
    exited,
    output: () => output,
    async waitFor(message, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = entries.find((entry) => entry['msg'] === message);
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`the agent logged no ${message}:\n${output.slice(-4000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url });
  scratch = tempDir('detectors');
  watched = path.join(scratch, 'hosts');
  authLog = path.join(scratch, 'auth.log');
  await writeFile(watched, '127.0.0.1 localhost\n');
  await writeFile(authLog, '');
  await mkdir(path.join(scratch, 'state'), { mode: 0o700 });

  feed = await openSocket(
    wssUrl(daemon.baseUrl, '/api/v1/feed'),
    daemon.ca,
    bootstrapAdminToken(daemon),
  );
  feed.send({ type: 'subscribe' });
  await feed.next((message) => message.type === 'subscribed');

  agent = startAgent([
    '--server',
    daemon.baseUrl,
    '--enroll-secret-file',
    path.join(daemon.dataDir, 'bootstrap', 'enrollment-secret'),
    '--ca',
    path.join(daemon.dataDir, 'tls', 'cert.pem'),
    '--state-dir',
    path.join(scratch, 'state'),
    '--hostname',
    'sensor-e2e',
    '--watch-file',
    authLog,
    '--integrity',
    watched,
  ]);
  await agent.waitFor('agent:enrolled');
  await agent.waitFor('integrity:baseline_recorded');
  await agent.waitFor('watch:started_at_end');
});

afterAll(async () => {
  await feed?.close();
  if (agent && agent.child.exitCode === null) {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
  await daemon?.stop();
  await db?.drop();
});

describe('the agent as a sensor', () => {
  it('turns a change of a watched file into a stored threat on the live feed', async () => {
    await appendFile(watched, '203.0.113.66 bank.example\n');

    const threat = await feed.next(
      (message) => message.type === 'threat' && message.threat_type === 'integrity.file_modified',
      15_000,
    );
    expect(threat).toMatchObject({
      severity: 7,
      hostname: 'sensor-e2e',
      title: `Watched file modified: ${watched}`,
      details: { path: watched, change: 'modified', changed: ['content'] },
    });
    const rows = await db.query(
      'SELECT threat_type, status, details FROM threats WHERE id = $1 AND report_id = $2',
      [threat.id, threat.report_id],
    );
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]).toMatchObject({ threat_type: 'integrity.file_modified', status: 'open' });
  });

  it('reports five SSH failures from one address in a followed log as one threat', async () => {
    const line = (n: number) =>
      `${new Date().toISOString()} host sshd[${4000 + n}]: Failed password for root from ` +
      `198.51.100.23 port ${50000 + n} ssh2\n`;
    await appendFile(authLog, [1, 2, 3, 4, 5].map(line).join(''));

    const threat = await feed.next(
      (message) => message.type === 'threat' && message.threat_type === 'auth.ssh.bruteforce',
      15_000,
    );
    expect(threat).toMatchObject({
      severity: 7,
      title: 'Repeated SSH authentication failures from 198.51.100.23',
      details: { rule: 'ssh-auth-failures', count: 5, fields: { source: '198.51.100.23' } },
    });
    const stored = await db.query(
      "SELECT count(*)::int AS n FROM threats WHERE threat_type = 'auth.ssh.bruteforce'",
    );
    expect(stored.rows[0]!.n).toBe(1);
  });

  it('stops cleanly on SIGTERM with nothing left in its outbox', async () => {
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const pending = await readdir(path.join(scratch, 'state', 'outbox'));
    expect(pending.filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});
