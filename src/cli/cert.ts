/**
 * `citadel-archer cert info`: the certificate the daemon serves, as the
 * configuration names it (`TLS_CERT_FILE`, else the development certificate
 * in the data directory): subject, SANs, issuer, validity and the SHA-256
 * fingerprint that `agent --pin` takes. A certificate that ends within 30
 * days, or has ended, adds a warning on standard error; the exit status stays
 * 0, since the facts were printed. Exit status 2: no usable configuration or
 * no certificate at all.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { systemClock } from '../clock/clock.ts';
import { type Config, loadConfig } from '../config/config.ts';
import {
  type CertificateFacts,
  describeCertificate,
  devCertificatePaths,
} from '../tls/certificates.ts';
import { type Expiry, expiryOf } from '../tls/expiry.ts';

interface CertInfoOptions {
  readonly config?: string;
  readonly json?: boolean;
}

/** Registers `cert` and its `info` subcommand on the program. */
export function registerCert(program: Command): void {
  const cert = program.command('cert').description('inspect the TLS certificate the daemon serves');
  cert
    .command('info')
    .description('print subject, SANs, issuer, validity and SHA-256 fingerprint')
    .option('--config <file>', 'a JSON config file (environment variables override it)')
    .option('--json', 'print one JSON object instead of text')
    .action((options: CertInfoOptions) => {
      process.exitCode = printCertInfo(options);
    });
}

function printCertInfo(options: CertInfoOptions): number {
  let certFile: string;
  let facts: CertificateFacts;
  try {
    const config = loadConfig(options.config ? { configFile: options.config } : {});
    certFile = certificateFileOf(config);
    facts = readCertificateFacts(certFile);
  } catch (error) {
    process.stderr.write(`citadel-archer: ${(error as Error).message}\n`);
    return 2;
  }

  const expiry = expiryOf(facts.validTo, systemClock.now());
  if (options.json) {
    process.stdout.write(`${JSON.stringify(asJson(certFile, facts, expiry))}\n`);
  } else {
    process.stdout.write(asText(certFile, facts, expiry));
  }
  const warning = expiryWarning(expiry);
  if (warning) process.stderr.write(`citadel-archer: warning: ${warning}\n`);
  return 0;
}

/** The certificate the daemon would load with this configuration. */
function certificateFileOf(config: Config): string {
  return config.tlsCertFile ?? devCertificatePaths(config.dataDir).certFile;
}

/** Reads the certificate alone: an operator without access to the key can still look. */
function readCertificateFacts(certFile: string): CertificateFacts {
  let pem: string;
  try {
    pem = readFileSync(certFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const hint = code === 'ENOENT' ? '; without TLS_CERT_FILE the daemon makes one at start' : '';
    throw new Error(`${certFile} cannot be read (${code})${hint}`);
  }
  try {
    return describeCertificate(pem);
  } catch {
    throw new Error(`${certFile} holds no PEM certificate`);
  }
}

function asText(certFile: string, facts: CertificateFacts, expiry: Expiry): string {
  const rows: Array<[string, string]> = [
    ['file', certFile],
    ['subject', facts.subject],
    ['SANs', facts.subjectAltNames.join(', ') || '(none)'],
    ['issuer', facts.issuer],
    ['valid from', facts.validFrom.toISOString()],
    ['valid until', `${facts.validTo.toISOString()} (${daysPhrase(expiry)})`],
    ['fingerprint', facts.fingerprint],
  ];
  return rows.map(([label, value]) => `${`${label}:`.padEnd(13)}${value}\n`).join('');
}

function asJson(certFile: string, facts: CertificateFacts, expiry: Expiry): object {
  return {
    file: certFile,
    subject: facts.subject,
    subject_alt_names: facts.subjectAltNames,
    issuer: facts.issuer,
    valid_from: facts.validFrom.toISOString(),
    valid_to: facts.validTo.toISOString(),
    days_left: expiry.daysLeft,
    status: expiry.status,
    fingerprint: facts.fingerprint,
  };
}

function daysPhrase(expiry: Expiry): string {
  if (expiry.status === 'expired') return 'expired';
  return expiry.daysLeft === 1 ? '1 day left' : `${expiry.daysLeft} days left`;
}

function expiryWarning(expiry: Expiry): string | undefined {
  const when = expiry.notAfter.toISOString();
  if (expiry.status === 'expired') return `the certificate expired at ${when}; replace it now`;
  if (expiry.status === 'expiring') {
    return `the certificate expires within 30 days (${when}); renew it and send SIGHUP`;
  }
  return undefined;
}
