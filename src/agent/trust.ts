/**
 * Which server certificates a client accepts, and the TLS connection that
 * enforces it. Three modes:
 * - `pin`: only a leaf certificate whose DER SHA-256 fingerprint is the
 *   pinned one, whoever issued it and whatever names it carries;
 * - `ca`: a chain to the given CA, with the host name checked;
 * - `system`: a chain to the system roots, with the host name checked.
 *
 * The check happens before the socket is handed to the HTTP or WebSocket
 * client, so no request byte (and no bearer token) is written to a server
 * that failed it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { ClientError } from './errors.ts';

export type Trust =
  | { readonly kind: 'pin'; readonly fingerprint: string }
  | { readonly kind: 'ca'; readonly ca: string; readonly source: string }
  | { readonly kind: 'system' };

export interface TrustOptions {
  /** A PEM file of the CA (or self-signed certificate) to trust. */
  readonly caFile?: string;
  /** `sha256:HEX`, colons optional, any case. */
  readonly pin?: string;
  /** Where the daemon keeps its dev certificate: `<dataDirectory>/tls/cert.pem`. */
  readonly dataDirectory: string;
}

const pinPattern = /^sha256:((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})$/i;
const defaultConnectTimeoutMs = 15_000;

/** Normalises a `sha256:HEX` pin to 64 lower-case hex digits. */
export function parsePin(text: string): string {
  const match = pinPattern.exec(text.trim());
  if (!match?.[1]) {
    throw new ClientError('invalid_option', {
      message: 'a pin is sha256: followed by 64 hex digits (colons allowed)',
    });
  }
  return match[1].replaceAll(':', '').toLowerCase();
}

/** The SHA-256 fingerprint of a DER certificate, as 64 lower-case hex digits. */
export function fingerprintOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Decides what to trust: the pin, else the CA file, else the daemon's dev
 * certificate in the data directory when it exists, else the system roots.
 */
export async function resolveTrust(options: TrustOptions): Promise<Trust> {
  if (options.pin !== undefined && options.caFile !== undefined) {
    throw new ClientError('invalid_option', { message: '--ca and --pin exclude each other' });
  }
  if (options.pin !== undefined) return { kind: 'pin', fingerprint: parsePin(options.pin) };
  if (options.caFile !== undefined) {
    return { kind: 'ca', ca: await readCertificate(options.caFile, true), source: options.caFile };
  }

  const devCertificate = join(options.dataDirectory, 'tls', 'cert.pem');
  const ca = await readCertificate(devCertificate, false);
  return ca === '' ? { kind: 'system' } : { kind: 'ca', ca, source: devCertificate };
}

async function readCertificate(path: string, required: boolean): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new ClientError('invalid_option', {
      message: `cannot read the CA file ${path}: ${(error as Error).message}`,
      cause: error,
    });
  }
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw new ClientError('invalid_option', {
      message: `${path} does not hold a PEM certificate`,
      cause: error,
    });
  }
  return pem;
}

export interface TlsTarget {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs?: number;
}

/** Opens a TLS connection and resolves only once the server passed the trust check. */
export function connectVerified(trust: Trust, target: TlsTarget): Promise<TLSSocket> {
  const options: ConnectionOptions = {
    host: target.host,
    port: target.port,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: trust.kind !== 'pin',
  };
  if (isIP(target.host) === 0) options.servername = target.host;
  if (trust.kind === 'ca') options.ca = trust.ca;

  return new Promise((resolve, reject) => {
    const socket = connect(options);
    const timeoutMs = target.connectTimeoutMs ?? defaultConnectTimeoutMs;
    const fail = (error: unknown): void => {
      socket.destroy();
      reject(classifyTlsError(error, target));
    };

    socket.setTimeout(timeoutMs, () => {
      fail(
        Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
      );
    });
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      const refusal = trust.kind === 'pin' ? checkPin(socket, trust.fingerprint) : undefined;
      if (refusal) {
        fail(refusal);
        return;
      }
      socket.setTimeout(0);
      socket.removeListener('error', fail);
      resolve(socket);
    });
  });
}

/**
 * A `createConnection` for `https.request` and `ws` that hands over the socket
 * only after the trust check, and fails the request with a `ClientError`.
 */
export function verifiedConnector(
  trust: Trust,
): (options: { host?: string | null; port?: number | string | null }, done: Done) => undefined {
  return (options, done) => {
    const target = { host: options.host ?? 'localhost', port: Number(options.port ?? 443) };
    connectVerified(trust, target).then(
      (socket) => done(null, socket),
      (error: unknown) => done(error as Error, undefined),
    );
    return undefined;
  };
}

type Done = (error: Error | null, socket: Socket | undefined) => void;

function checkPin(socket: TLSSocket, expected: string): ClientError | undefined {
  const certificate = socket.getPeerCertificate();
  const raw = certificate?.raw;
  if (!raw || raw.length === 0) {
    return new ClientError('tls_pin_mismatch', { message: 'the server sent no certificate' });
  }
  const actual = fingerprintOf(raw);
  if (actual === expected) return undefined;
  return new ClientError('tls_pin_mismatch', {
    message: `the server certificate is sha256:${actual}, not the pinned sha256:${expected}`,
    details: { expected, actual },
  });
}

const certificateErrorCodes = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Sorts a connection failure into a refusal to trust or a failure to reach. */
export function classifyTlsError(error: unknown, target: TlsTarget): ClientError {
  if (error instanceof ClientError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  const reason = error instanceof Error ? error.message : String(error);
  const where = `${target.host}:${target.port}`;
  if (certificateErrorCodes.has(code)) {
    return new ClientError('tls_untrusted', {
      message:
        `the certificate of ${where} is not trusted (${code}: ${reason}); ` +
        'pass --ca FILE or --pin sha256:HEX',
      cause: error,
      details: { tlsCode: code },
    });
  }
  return new ClientError('server_unreachable', {
    message: `cannot reach ${where}: ${reason}`,
    cause: error,
    details: { errno: code },
  });
}
