/**
 * The TLS material the listeners serve: from `TLS_CERT_FILE` and
 * `TLS_KEY_FILE` when configured, else (outside production) a development
 * certificate generated once into `<data dir>/tls/` with `selfsigned`: an EC
 * P-256 key, signed with SHA-256, with SANs for localhost, 127.0.0.1 and ::1.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import selfsigned from 'selfsigned';
import type { Config } from '../config/config.ts';
import { CitadelError } from '../errors/catalogue.ts';
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

/**
 * Reads and checks a certificate (the leaf first, a chain may follow) and its
 * key. Throws `config_invalid` naming the setting when a file cannot be read,
 * holds no PEM of its kind, or the key is not the certificate's.
 */
export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const cert = readSetting('TLS_CERT_FILE', certFile);
  const key = readSetting('TLS_KEY_FILE', keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (cause) {
    throw tlsFileProblem('TLS_CERT_FILE', `${certFile} holds no PEM certificate`, cause);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw tlsFileProblem('TLS_KEY_FILE', `${keyFile} holds no unencrypted PEM private key`, cause);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw tlsFileProblem('TLS_KEY_FILE', `${keyFile} is not the key of ${certFile}`);
  }
  return { cert, key, certFile, keyFile };
}

function readSetting(key: 'TLS_CERT_FILE' | 'TLS_KEY_FILE', file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw tlsFileProblem(key, `${file} cannot be read (${reason})`, cause);
  }
}

function tlsFileProblem(key: string, problem: string, cause?: unknown): CitadelError {
  return new CitadelError('config_invalid', {
    message: `configuration key ${key}: ${problem}`,
    cause,
    details: { key },
  });
}

/**
 * A self-signed certificate that is its own CA: an EC P-256 key, signed with
 * SHA-256, with SANs for localhost, 127.0.0.1 and (unless told not to) ::1,
 * valid from a minute ago. The development certificate, and the tests' certificates, are these.
 */
export async function generateSelfSigned(
  options: { commonName?: string; validDays?: number; ipv6Loopback?: boolean } = {},
): Promise<{ cert: string; key: string }> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(Date.now() + (options.validDays ?? 365) * 86_400_000);
  const pems = await selfsigned.generate(
    [{ name: 'commonName', value: options.commonName ?? 'localhost' }],
    {
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
            ...(options.ipv6Loopback === false ? [] : [{ type: 7 as const, ip: '::1' }]),
          ],
        },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

async function generateDevCertificate(certFile: string, keyFile: string): Promise<void> {
  const pems = await generateSelfSigned();
  mkdirSync(path.dirname(certFile), { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, pems.key, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
}

/** What an operator needs to know about a certificate, as `cert info` prints it. */
export interface CertificateFacts {
  readonly subject: string;
  readonly subjectAltNames: readonly string[];
  readonly issuer: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  /** `sha256:HEX`, the form `agent --pin` takes. */
  readonly fingerprint: string;
}

/** Reads the facts of the first (leaf) certificate of a PEM. */
export function describeCertificate(certPem: string): CertificateFacts {
  const leaf = new X509Certificate(certPem);
  return {
    subject: leaf.subject.split('\n').join(', '),
    subjectAltNames: (leaf.subjectAltName ?? '').split(', ').filter((name) => name.length > 0),
    issuer: leaf.issuer.split('\n').join(', '),
    validFrom: leaf.validFromDate,
    validTo: leaf.validToDate,
    fingerprint: fingerprintOf(certPem),
  };
}

/** The SHA-256 fingerprint of a PEM certificate, as agents pin it. */
export function fingerprintOf(certPem: string): string {
  return `sha256:${new X509Certificate(certPem).fingerprint256.replaceAll(':', '').toLowerCase()}`;
}
