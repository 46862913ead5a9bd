/**
 * The TLS material the listeners serve: from `TLS_CERT_FILE` and
 * `TLS_KEY_FILE` when configured, else (outside production) a development
 * certificate generated once into `<data dir>/tls/` with `selfsigned`: an EC
 * P-256 key, signed with SHA-256, with SANs for localhost, 127.0.0.1 and ::1.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import selfsigned from 'selfsigned';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Modern settings only: TLS 1.2 and 1.3, AEAD ciphers with forward secrecy. */
export const tlsHardening: SecureContextOptions = Object.freeze({
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
});

export function devCertificatePaths(dataDir: string): { certFile: string; keyFile: string } {
  return {
    certFile: path.join(dataDir, 'tls', 'cert.pem'),
    keyFile: path.join(dataDir, 'tls', 'key.pem'),
  };
}

/** Loads the configured files, or makes the development certificate once. */
export async function loadTlsMaterial(config: Config, log: Logger): Promise<TlsMaterial> {
  if (config.tlsCertFile && config.tlsKeyFile) {
    return readTlsFiles(config.tlsCertFile, config.tlsKeyFile);
  }
  const { certFile, keyFile } = devCertificatePaths(config.dataDir);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    await generateDevCertificate(certFile, keyFile);
    log.info({ certFile }, 'tls:dev-certificate-created');
  }
  return readTlsFiles(certFile, keyFile);
}

export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const cert = readFileSync(certFile, 'utf8');
  const key = readFileSync(keyFile, 'utf8');
  new X509Certificate(cert);
  return { cert, key, certFile, keyFile };
}

async function generateDevCertificate(certFile: string, keyFile: string): Promise<void> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + 365 * 24 * 3_600_000);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  mkdirSync(path.dirname(certFile), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
}

/** The SHA-256 fingerprint of a PEM certificate, as agents pin it. */
export function fingerprintOf(certPem: string): string {
  return `sha256:${new X509Certificate(certPem).fingerprint256.replaceAll(':', '').toLowerCase()}`;
}
