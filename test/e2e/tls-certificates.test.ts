/**
 * Certificates from files, in production: the refusals to start, the HSTS
 * profile with its options, the expiry warning (logged and from `cert info`),
 * rotation on SIGHUP under a live agent session, and the reference agent's
 * pin, all against the real daemon process.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import { connect, createServer as createTcpServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { httpsJson, openSocket, wssUrl } from '../support/clients.ts';
import {
  bootstrapAdminToken,
  bootstrapSecret,
  projectRoot,
  type RunningDaemon,
  startDaemon,
  tempDir,
} from '../support/daemon.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { handshake, makeCertificate, type TestCertificate } from '../support/tls.ts';

let db: TestDatabase;
let dir: string;
let soon: TestCertificate;
let next: TestCertificate;
let stray: TestCertificate;
const live = () => ({
  certFile: path.join(dir, 'live.pem'),
  keyFile: path.join(dir, 'live-key.pem'),
});
const liveEnv = () => ({ TLS_CERT_FILE: live().certFile, TLS_KEY_FILE: live().keyFile });

const notAfterSeconds = (pem: string) =>
  Math.floor(new X509Certificate(pem).validToDate.getTime() / 1_000);

/** Puts a certificate and key where the daemon reads them, as an operator's deploy would. */
function install(certificate: Pick<TestCertificate, 'certFile' | 'keyFile'>): void {
  copyFileSync(certificate.certFile, live().certFile);
  copyFileSync(certificate.keyFile, live().keyFile);
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = tempDir('tls');
  soon = await makeCertificate(dir, 'soon', 10);
  next = await makeCertificate(dir, 'next', 400);
  stray = await makeCertificate(dir, 'stray', 400);
  install(soon);
});

afterAll(async () => {
  await db?.drop();
});

describe('a production start', () => {
  const serve = (env: Record<string, string>) =>
    runCli(['serve'], {
      ENVIRONMENT: 'production',
      DATABASE_URL: db.url,
      CITADEL_DATA_DIR: tempDir('refused'),
      CITADEL_LISTEN: '127.0.0.1:0',
      CITADEL_HTTP_LISTEN: '127.0.0.1:0',
      ...env,
    });

  it('is refused in one line, exit code 2, when no certificate files are configured', async () => {
    const run = await serve({});
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'citadel-archer: ENVIRONMENT=production needs TLS_CERT_FILE and TLS_KEY_FILE\n',
    );
  });

  it('is refused in one line naming TLS_CERT_FILE when that file cannot be read', async () => {
    const missing = path.join(dir, 'missing.pem');
    const run = await serve({ TLS_CERT_FILE: missing, TLS_KEY_FILE: soon.keyFile });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `citadel-archer: configuration key TLS_CERT_FILE: ${missing} cannot be read (ENOENT)\n`,
    );
  });

  it('is refused in one line naming TLS_KEY_FILE when the key does not match', async () => {
    const run = await serve({ TLS_CERT_FILE: soon.certFile, TLS_KEY_FILE: next.keyFile });
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `citadel-archer: configuration key TLS_KEY_FILE: ${next.keyFile} ` +
        `is not the key of ${soon.certFile}`,
    ]);
  });

  it('is refused in one line naming HSTS_PRELOAD when subdomains are not included', async () => {
    const run = await serve({ ...liveEnv(), HSTS_PRELOAD: 'true' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^citadel-archer: configuration key HSTS_PRELOAD: [^\n]+\n$/);
  });
});

describe('a production daemon serving certificate files', () => {
  let daemon: RunningDaemon;
  let relay: Server;
  let relayed = 0;

  beforeAll(async () => {
    daemon = await startDaemon({
      databaseUrl: db.url,
      env: {
        ENVIRONMENT: 'production',
        ...liveEnv(),
        HSTS_INCLUDE_SUBDOMAINS: 'true',
        HSTS_PRELOAD: 'true',
      },
    });
    // A TCP relay in front of the daemon, counting the connections agents open.
    relay = createTcpServer((client) => {
      relayed += 1;
      const upstream = connect(daemon.httpsPort, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    relay?.close();
    await daemon?.stop();
  });

  const relayPort = () => (relay.address() as { port: number }).port;

  const agentArgs = (pin: string) => {
    const secretFile = path.join(tempDir('agent-secret'), 'secret');
    writeFileSync(secretFile, bootstrapSecret(daemon), { mode: 0o600 });
    return [
      'agent',
      '--server',
      `https://127.0.0.1:${relayPort()}`,
      '--pin',
      pin,
      '--enroll-secret-file',
      secretFile,
      '--state-dir',
      tempDir('agent-state'),
      '--hostname',
      `pinned-${pin.slice(7, 15)}`,
      '--machine-id',
      `machine-${pin.slice(7, 23)}`,
    ];
  };

  /** The expiry gauge as `/metrics` reports it to an admin. */
  const expiryMetric = async (ca: string): Promise<number> => {
    const token = bootstrapAdminToken(daemon);
    const response = await httpsJson(daemon.baseUrl, ca, 'GET', '/metrics', { token });
    const line = /^citadel_tls_certificate_expiry_timestamp_seconds (\d+)$/m.exec(response.body);
    return Number(line?.[1]);
  };

  it('reports when its certificate ends as a metric', async () => {
    expect(await expiryMetric(soon.cert)).toBe(notAfterSeconds(soon.cert));
  });

  it('sends HSTS for a year with includeSubDomains and preload, as configured', async () => {
    const response = await httpsJson(daemon.baseUrl, soon.cert, 'GET', '/healthz');
    expect(response.headers['strict-transport-security']).toBe(
      'max-age=31536000; includeSubDomains; preload',
    );
  });

  it('logs at start that its certificate expires within 30 days', () => {
    const warning = daemon.entries().find((e) => e['msg'] === 'tls:certificate-expiring');
    expect(warning).toMatchObject({
      level: 40,
      certFile: live().certFile,
      fingerprint: soon.fingerprint,
      daysLeft: 9,
    });
  });

  it('has cert info print the configured certificate and warn that it expires soon', async () => {
    const run = await runCli(['cert', 'info'], liveEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^subject: +CN=citadel-test-soon$/m);
    expect(run.stdout).toMatch(/^issuer: +CN=citadel-test-soon$/m);
    expect(run.stdout).toMatch(/^SANs: +DNS:localhost, IP Address:127\.0\.0\.1$/m);
    expect(run.stdout).toMatch(/^valid from: +\d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    expect(run.stdout).toMatch(/^valid until: +\S+Z \(9 days left\)$/m);
    expect(run.stdout).toContain(`fingerprint: ${soon.fingerprint}`);
    expect(run.stderr).toMatch(/^citadel-archer: warning: the certificate expires within 30 days/);

    const json = await runCli(['cert', 'info', '--json'], liveEnv());
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: 'expiring',
      days_left: 9,
      fingerprint: soon.fingerprint,
      subject_alt_names: ['DNS:localhost', 'IP Address:127.0.0.1'],
    });
  });

  it('has a pinned agent refuse another certificate at once, without retrying', async () => {
    const before = relayed;
    const run = await runCli(agentArgs(next.fingerprint), {}, 30_000);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(
      `error tls_pin_mismatch: the server certificate is ${soon.fingerprint}, ` +
        `not the pinned ${next.fingerprint}`,
    );
    expect(run.elapsedMs).toBeLessThan(10_000);
    expect(relayed - before).toBe(1);
  });

  it('rotates on SIGHUP: new handshakes get the new certificate, a session stays', async () => {
    const enrolled = await httpsJson(daemon.baseUrl, soon.cert, 'POST', '/api/v1/enroll', {
      body: { hostname: 'rotation-witness', enrollment_secret: bootstrapSecret(daemon) },
    });
    expect(enrolled.status).toBe(201);
    const url = wssUrl(daemon.baseUrl, '/api/v1/agent');
    const session = await openSocket(url, soon.cert, enrolled.body.token);
    await session.next((m) => m.type === 'welcome');
    expect((await handshake(daemon.httpsPort)).fingerprint).toBe(soon.fingerprint);

    install(next);
    const reloaded = daemon.waitForLog('tls:reloaded');
    daemon.process.kill('SIGHUP');
    await reloaded;

    expect((await handshake(daemon.httpsPort)).fingerprint).toBe(next.fingerprint);
    const fresh = await httpsJson(daemon.baseUrl, next.cert, 'GET', '/healthz');
    expect(fresh.status).toBe(200);
    session.send({ type: 'heartbeat' });
    await session.next((m) => m.type === 'heartbeat_ack');
    expect(session.ws.readyState).toBe(session.ws.OPEN);
    const checked = daemon.entries().filter((e) => e['fingerprint'] === next.fingerprint);
    expect(checked.map((e) => e['msg'])).toEqual(['tls:certificate-valid']);
    expect(await expiryMetric(next.cert)).toBe(notAfterSeconds(next.cert));
    await session.close();
  });

  it('keeps the certificate in use when a reload finds a key that is not its own', async () => {
    copyFileSync(stray.certFile, live().certFile);
    const failed = daemon.waitForLog('tls:reload-failed');
    daemon.process.kill('SIGHUP');
    expect(await failed).toMatchObject({ level: 50 });
    expect((await handshake(daemon.httpsPort)).fingerprint).toBe(next.fingerprint);
    install(next);
  });

  it('has an agent pinned to the certificate in use enroll and hold a session', async () => {
    const presented = (await handshake(daemon.httpsPort)).fingerprint;
    const agent = spawn(
      process.execPath,
      [path.join(projectRoot, 'src/main.ts'), ...agentArgs(presented)],
      { cwd: projectRoot, stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let stderr = '';
    agent.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => agent.on('exit', resolve));
    try {
      const opened = await daemon.waitForLog('session:opened', 20_000).catch(() => stderr);
      expect(opened).toMatchObject({ msg: 'session:opened' });
    } finally {
      agent.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
