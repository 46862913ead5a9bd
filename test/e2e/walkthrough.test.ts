/**
 * The README's walkthrough, as a new user would run it, in its order: the
 * daemon, the reference agent, `citadel-archer feed`, then a threat typed on
 * the agent's stdin that the feed prints, curl listing it and acknowledging
 * it, and `feed --since 0` replaying it afterwards.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  projectRoot,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const run = promisify(execFile);
let db: TestDatabase;
let daemon: RunningDaemon;
const children: ChildProcess[] = [];
const output = new Map<ChildProcess, { stdout: string; stderr: string }>();

function cli(args: string[]): ChildProcess {
  const child = spawn(path.join(projectRoot, 'bin/citadel-archer'), args, {
    cwd: projectRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const captured = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => {
    captured.stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    captured.stderr += chunk.toString();
  });
  output.set(child, captured);
  children.push(child);
  return child;
}

function curl(method: string, url: string, token: string, body?: unknown) {
  const args = ['-sS', '--cacert', path.join(daemon.dataDir, 'tls/cert.pem'), '-X', method];
  args.push('-H', `Authorization: Bearer ${token}`);
  if (body !== undefined)
    args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
  return run('curl', [...args, url]).then((r) => JSON.parse(r.stdout));
}

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await daemon?.stop();
  await db?.drop();
});

describe('the walkthrough', () => {
  it('takes a typed threat to the feed, to curl and PATCH, then to a replay from 0', async () => {
    const common = ['--server', daemon.baseUrl, '--ca', path.join(daemon.dataDir, 'tls/cert.pem')];
    const agent = cli([
      'agent',
      ...common,
      '--enroll-secret-file',
      path.join(daemon.dataDir, 'bootstrap/enrollment-secret'),
      '--state-dir',
      tempDir('agent-state'),
      '--hostname',
      'walkthrough-host',
    ]);
    await expect
      .poll(
        async () =>
          (await db.query("SELECT status FROM agents WHERE hostname = 'walkthrough-host'")).rows[0]
            ?.status,
        {
          timeout: 20_000,
        },
      )
      .toBe('active');

    const feed = cli([
      'feed',
      ...common,
      '--token-file',
      path.join(daemon.dataDir, 'bootstrap/admin-token'),
      '--log-level',
      'info',
    ]);
    await expect
      .poll(() => output.get(feed)!.stderr.includes('feed:subscribed'), { timeout: 20_000 })
      .toBe(true);

    const typedAt = Date.now();
    agent.stdin!.write(
      `${JSON.stringify({ threat_type: 'malware.detected', severity: 8, title: 'EICAR test file', details: { path: '/tmp/eicar.com' } })}\n`,
    );
    await expect
      .poll(() => output.get(feed)!.stdout.includes('EICAR test file'), {
        timeout: 5_000,
        interval: 20,
      })
      .toBe(true);
    expect(Date.now() - typedAt).toBeLessThan(1_000);
    const printed = JSON.parse(output.get(feed)!.stdout.trim().split('\n')[0]!);
    expect(printed).toMatchObject({ type: 'threat', severity: 8, hostname: 'walkthrough-host' });

    const admin = bootstrapAdminToken(daemon);
    const listed = await curl('GET', `${daemon.baseUrl}/api/v1/threats`, admin);
    expect(listed.items.map((t: { title: string }) => t.title)).toContain('EICAR test file');
    const acked = await curl('PATCH', `${daemon.baseUrl}/api/v1/threats/${printed.id}`, admin, {
      status: 'acknowledged',
    });
    expect(acked.status).toBe('acknowledged');
    await expect
      .poll(() => output.get(feed)!.stdout.includes('"type":"threat_updated"'), { timeout: 5_000 })
      .toBe(true);

    const replay = cli([
      'feed',
      ...common,
      '--token-file',
      path.join(daemon.dataDir, 'bootstrap/admin-token'),
      '--since',
      '0',
    ]);
    await expect
      .poll(() => output.get(replay)!.stdout.includes('EICAR test file'), { timeout: 20_000 })
      .toBe(true);

    const secrets = [admin, bootstrapSecret(daemon)];
    const tokenRow = await db.query('SELECT id FROM agent_tokens LIMIT 1');
    expect(tokenRow.rowCount).toBe(1);
    for (const text of [
      daemon.log(),
      ...[...output.values()].flatMap((o) => [o.stdout, o.stderr]),
    ]) {
      for (const secret of secrets) expect(text.includes(secret)).toBe(false);
      expect(text).not.toMatch(/cat_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}/);
    }
  });
});
