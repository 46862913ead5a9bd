import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientError, isClientError } from '../../src/agent/errors.ts';
import { requestJson } from '../../src/agent/https-json.ts';
import { connectVerified, parsePin, resolveTrust, type Trust } from '../../src/agent/trust.ts';
import { FakeDaemon, makeCertificate, type TestCertificate } from './fake-daemon.ts';

let daemon: FakeDaemon;
let other: TestCertificate;
let port: number;
let scratch: string;

beforeAll(async () => {
  daemon = await FakeDaemon.start();
  other = await makeCertificate();
  port = Number(new URL(daemon.url).port);
  scratch = await mkdtemp(join(tmpdir(), 'citadel-trust-'));
  daemon.route('GET', '/healthz', () => ({ status: 200, body: { status: 'ok' } }));
});

afterAll(async () => {
  await daemon.stop();
  await rm(scratch, { recursive: true, force: true });
});

async function refusal(trust: Trust): Promise<ClientError> {
  const outcome = await connectVerified(trust, { host: '127.0.0.1', port }).then(
    (socket) => {
      socket.destroy();
      throw new Error('the connection was accepted');
    },
    (error: unknown) => error,
  );
  if (!isClientError(outcome)) throw outcome;
  return outcome;
}

describe('parsePin', () => {
  it('accepts hex with or without colons, in any case, and normalises it', () => {
    const hex = 'ab'.repeat(32);
    expect(parsePin(`sha256:${hex}`)).toBe(hex);
    expect(parsePin(`SHA256:${'AB:'.repeat(31)}AB`)).toBe(hex);
  });

  it('refuses a pin of the wrong length or algorithm', () => {
    expect(() => parsePin('sha256:abcd')).toThrow(/64 hex digits/);
    expect(() => parsePin(`sha1:${'ab'.repeat(32)}`)).toThrow(/64 hex digits/);
  });
});

describe('connectVerified', () => {
  it('accepts a server whose certificate has the pinned fingerprint', async () => {
    const socket = await connectVerified(
      { kind: 'pin', fingerprint: daemon.certificate.fingerprint },
      { host: '127.0.0.1', port },
    );
    expect(socket.authorized).toBe(false);
    socket.destroy();
  });

  it('refuses any other certificate with tls_pin_mismatch, naming both fingerprints', async () => {
    const error = await refusal({ kind: 'pin', fingerprint: other.fingerprint });
    expect(error.code).toBe('tls_pin_mismatch');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(daemon.certificate.fingerprint);
    expect(error.message).toContain(other.fingerprint);
  });

  it('writes no request to a server that fails the pin', async () => {
    const before = daemon.bytesReceived;
    const outcome = await requestJson({
      url: new URL(`${daemon.url}/healthz`),
      method: 'GET',
      trust: { kind: 'pin', fingerprint: other.fingerprint },
      bearer: 'cad_secret_that_must_not_leave',
    }).catch((error: unknown) => error);
    expect(isClientError(outcome, 'tls_pin_mismatch')).toBe(true);
    expect(daemon.bytesReceived).toBe(before);
    expect(daemon.requests.some((request) => request.authorization !== undefined)).toBe(false);
  });

  it('trusts a server signed by the given CA and checks its name', async () => {
    const socket = await connectVerified(
      { kind: 'ca', ca: daemon.certificate.cert, source: 'test' },
      { host: '127.0.0.1', port },
    );
    expect(socket.authorized).toBe(true);
    socket.destroy();
  });

  it('refuses a server the CA did not sign with tls_untrusted', async () => {
    const error = await refusal({ kind: 'ca', ca: other.cert, source: 'test' });
    expect(error.code).toBe('tls_untrusted');
  });

  it('refuses a self-signed server against the system roots', async () => {
    const error = await refusal({ kind: 'system' });
    expect(error.code).toBe('tls_untrusted');
  });

  it('calls a closed port unreachable, which is worth retrying', async () => {
    const error = await connectVerified({ kind: 'system' }, { host: '127.0.0.1', port: 1 }).catch(
      (caught: ClientError) => caught,
    );
    expect(isClientError(error, 'server_unreachable')).toBe(true);
    expect((error as ClientError).retryable).toBe(true);
  });
});

describe('resolveTrust', () => {
  it("uses the daemon's dev certificate from the data directory when there is one", async () => {
    const dataDirectory = join(scratch, 'data');
    await mkdir(join(dataDirectory, 'tls'), { recursive: true });
    await writeFile(join(dataDirectory, 'tls', 'cert.pem'), daemon.certificate.cert);
    const trust = await resolveTrust({ dataDirectory });
    expect(trust).toMatchObject({ kind: 'ca', source: join(dataDirectory, 'tls', 'cert.pem') });
  });

  it('falls back to the system roots without a CA file, pin or dev certificate', async () => {
    expect(await resolveTrust({ dataDirectory: join(scratch, 'nothing') })).toEqual({
      kind: 'system',
    });
  });

  it('prefers a pin, and refuses --ca together with --pin', async () => {
    const pin = `sha256:${other.fingerprint}`;
    expect(await resolveTrust({ dataDirectory: scratch, pin })).toEqual({
      kind: 'pin',
      fingerprint: other.fingerprint,
    });
    await expect(resolveTrust({ dataDirectory: scratch, pin, caFile: 'x.pem' })).rejects.toThrow(
      /exclude each other/,
    );
  });

  it('refuses a CA file that holds no certificate', async () => {
    const bogus = join(scratch, 'bogus.pem');
    await writeFile(bogus, 'not a certificate');
    await expect(resolveTrust({ dataDirectory: scratch, caFile: bogus })).rejects.toThrow(
      /does not hold a PEM certificate/,
    );
  });
});
