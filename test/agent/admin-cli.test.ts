import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDaemon } from './fake-daemon.ts';

const node = join(process.cwd(), 'node_modules', '.bin', 'node');
const main = join(process.cwd(), 'src', 'main.ts');

let daemon: FakeDaemon;
let dataDirectory: string;

beforeAll(async () => {
  daemon = await FakeDaemon.start();
  dataDirectory = await mkdtemp(join(tmpdir(), 'citadel-admin-'));
  await mkdir(join(dataDirectory, 'tls'));
  await mkdir(join(dataDirectory, 'bootstrap'));
  await writeFile(join(dataDirectory, 'tls', 'cert.pem'), daemon.certificate.cert);
  await writeFile(join(dataDirectory, 'bootstrap', 'admin-token'), 'cad_boot_secret\n');

  daemon.route('GET', '/api/v1/threats', (request) => ({
    status: 200,
    body: { items: [], next: null, saw: Object.fromEntries(request.query) },
  }));
  daemon.route('PATCH', '/api/v1/threats/t%2F1', () => ({
    status: 409,
    body: {
      error: { code: 'invalid_transition', message: 'That threat status change is not allowed.' },
    },
  }));
});

afterAll(async () => {
  await daemon.stop();
  await rm(dataDirectory, { recursive: true, force: true });
});

interface Outcome {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function admin(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      node,
      [main, 'admin', ...args],
      { env: { PATH: process.env['PATH'], CITADEL_DATA_DIR: dataDirectory, ...env } },
      (error, stdout, stderr) => {
        resolve({ status: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

describe('citadel-archer admin', () => {
  it('prints the answer as JSON, using the bootstrap token and the dev certificate', async () => {
    const outcome = await admin(['threats', '--server', daemon.url, '--min-severity', '7']);
    expect(outcome.status).toBe(0);
    expect(JSON.parse(outcome.stdout)).toEqual({
      items: [],
      next: null,
      saw: { min_severity: '7' },
    });
    const seen = daemon.requests.at(-1);
    expect(seen?.authorization).toBe('Bearer cad_boot_secret');
  });

  it('prints the server error code and message on stderr and exits 1', async () => {
    const outcome = await admin(['ack', 't/1', '--note', 'seen', '--server', daemon.url], {
      CITADEL_ADMIN_TOKEN: 'cad_env_secret',
    });
    expect(outcome.status).toBe(1);
    expect(outcome.stderr).toBe(
      'error invalid_transition: That threat status change is not allowed.\n',
    );
    expect(daemon.requests.at(-1)).toMatchObject({
      method: 'PATCH',
      authorization: 'Bearer cad_env_secret',
      body: { status: 'acknowledged', note: 'seen' },
    });
  });

  it('exits 2 on a usage mistake', async () => {
    const outcome = await admin(['resolve', 'some-id', '--server', daemon.url]);
    expect(outcome.status).toBe(2);
    expect(outcome.stderr).toContain('--resolution');
  });

  it("accepts a --limit up to the API's 500 and refuses more as a usage mistake", async () => {
    const largest = await admin(['threats', '--server', daemon.url, '--limit', '500']);
    expect(largest.status).toBe(0);
    expect(JSON.parse(largest.stdout).saw).toEqual({ limit: '500' });

    const requestsBefore = daemon.requests.length;
    for (const command of ['threats', 'audit']) {
      const outcome = await admin([command, '--server', daemon.url, '--limit', '800']);
      expect(outcome.status).toBe(2);
      expect(outcome.stderr).toContain('must be between 1 and 500');
    }
    expect(daemon.requests.length).toBe(requestsBefore);
  });

  it('exits 3 when the server cannot be reached', async () => {
    const outcome = await admin(['agents', '--server', 'https://127.0.0.1:1']);
    expect(outcome.status).toBe(3);
    expect(outcome.stderr).toMatch(/^error server_unreachable: /);
  });

  it('exits 3 with a clear message when the certificate does not match the pin', async () => {
    const outcome = await admin([
      'agents',
      '--server',
      daemon.url,
      '--pin',
      `sha256:${'0'.repeat(64)}`,
    ]);
    expect(outcome.status).toBe(3);
    expect(outcome.stderr).toMatch(/^error tls_pin_mismatch: the server certificate is sha256:/);
  });
});
