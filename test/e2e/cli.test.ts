/**
 * The command line against a real daemon: `migrate`, and `admin` for the
 * acts an operator does by hand, with its exit codes.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsJson, openSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapSecret,
  projectRoot,
  type RunningDaemon,
  startDaemon,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const execute = promisify(execFile);
let db: TestDatabase;
let daemon: RunningDaemon;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await execute(path.join(projectRoot, 'bin/citadel-archer'), args, {
      cwd: projectRoot,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const admin = (args: string[]) =>
  cli([
    'admin',
    '--server',
    daemon.baseUrl,
    '--ca',
    path.join(daemon.dataDir, 'tls/cert.pem'),
    '--token-file',
    path.join(daemon.dataDir, 'bootstrap/admin-token'),
    ...args,
  ]);

beforeAll(async () => {
  db = await createTestDatabase();
  daemon = await startDaemon({ databaseUrl: db.url });
});

afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('citadel-archer migrate', () => {
  it('applies the migrations to a fresh database, then finds nothing to do', async () => {
    const fresh = await createTestDatabase();
    try {
      const first = await cli(['migrate'], { DATABASE_URL: fresh.url, LOG_LEVEL: 'info' });
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('migration:applied');
      const tables = await fresh.query(
        'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ' +
          "('agents','agent_tokens','threats','audit_logs','enrollment_secrets','admin_tokens')",
      );
      expect(tables.rows[0]!.n).toBe(6);
      const second = await cli(['migrate'], { DATABASE_URL: fresh.url, LOG_LEVEL: 'info' });
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('migrate:up-to-date');
    } finally {
      await fresh.drop();
    }
  });

  it('stops with exit code 2 and the key named on a bad setting', async () => {
    const result = await cli(['migrate'], { DB_PORT: 'many' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DB_PORT');
  });
});

describe('citadel-archer admin', () => {
  it('creates a single-use enrollment secret that enrolls once', async () => {
    const created = await admin(['enrollment-secret', 'create', '--max-uses', '1']);
    expect(created.code).toBe(0);
    const { secret, id } = JSON.parse(created.stdout);
    const enroll = (hostname: string) =>
      httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
        body: { hostname, enrollment_secret: secret },
      });
    expect((await enroll('cli-1')).status).toBe(201);
    expect((await enroll('cli-2')).status).toBe(401);
    expect((await admin(['enrollment-secret', 'revoke', id])).code).toBe(0);
  });

  it('creates a viewer token that can read but not acknowledge', async () => {
    const created = await admin(['token', 'create', '--name', 'cli-viewer', '--role', 'viewer']);
    expect(created.code).toBe(0);
    const viewer = JSON.parse(created.stdout).token as string;
    const listed = await cli(
      [
        'admin',
        '--server',
        daemon.baseUrl,
        '--ca',
        path.join(daemon.dataDir, 'tls/cert.pem'),
        'agents',
      ],
      {
        CITADEL_ADMIN_TOKEN: viewer,
      },
    );
    expect(listed.code).toBe(0);
    const refused = await cli(
      [
        'admin',
        '--server',
        daemon.baseUrl,
        '--ca',
        path.join(daemon.dataDir, 'tls/cert.pem'),
        'ack',
        randomUUID(),
      ],
      { CITADEL_ADMIN_TOKEN: viewer },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('forbidden');
  });

  it('revokes an agent, closing its live session with 4401', async () => {
    const enrolled = await httpsJson(daemon.baseUrl, daemon.ca, 'POST', '/api/v1/enroll', {
      body: { hostname: 'cli-revoked', enrollment_secret: bootstrapSecret(daemon) },
    });
    const socket = await openSocket(
      wssUrl(daemon.baseUrl, '/api/v1/agent'),
      daemon.ca,
      enrolled.body.token,
    );
    const revoked = await admin(['revoke-agent', enrolled.body.agent_id]);
    expect(revoked.code).toBe(0);
    expect((await socket.closed).code).toBe(4401);
  });

  it('lists the audit trail, and reports an unknown id with exit code 1', async () => {
    const audit = await admin(['audit', '--event-type', 'agent.revoked']);
    expect(audit.code).toBe(0);
    expect(JSON.parse(audit.stdout).items.length).toBeGreaterThan(0);
    const missing = await admin(['threat', randomUUID()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not_found');
  });

  it('says so with exit code 3 when the daemon cannot be reached', async () => {
    const result = await cli(['admin', '--server', 'https://127.0.0.1:1', 'agents'], {
      CITADEL_ADMIN_TOKEN: 'cad_x',
    });
    expect(result.code).toBe(3);
  });
});
