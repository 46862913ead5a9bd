/** Certificates made by tests, and TLS handshakes that report what they saw. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ConnectionOptions, connect } from 'node:tls';
import { fingerprintOf, generateSelfSigned } from '../../src/tls/certificates.ts';

export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** `sha256:HEX`, as `agent --pin` takes it. */
  readonly fingerprint: string;
}

/**
 * A self-signed EC certificate for 127.0.0.1 and localhost, valid from a
 * minute ago for `validDays`, written as `<name>.pem` and `<name>-key.pem`.
 */
export async function makeCertificate(
  dir: string,
  name: string,
  validDays: number,
  commonName = `citadel-test-${name}`,
): Promise<TestCertificate> {
  const pems = await generateSelfSigned({ commonName, validDays, ipv6Loopback: false });
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}-key.pem`);
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.key, { mode: 0o600 });
  return {
    certFile,
    keyFile,
    cert: pems.cert,
    key: pems.key,
    fingerprint: fingerprintOf(pems.cert),
  };
}

export interface Handshake {
  readonly protocol: string | null;
  readonly cipher: string;
  /** The presented certificate as `sha256:HEX`. */
  readonly fingerprint: string;
}

/** Completes a TLS handshake (no HTTP) and reports it; rejects with the TLS error. */
export function handshake(port: number, options: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const der = socket.getPeerCertificate().raw.toString('base64');
      const pem = `-----BEGIN CERTIFICATE-----\n${der}\n-----END CERTIFICATE-----\n`;
      resolve({
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        fingerprint: fingerprintOf(pem),
      });
      socket.end();
    });
  });
}
