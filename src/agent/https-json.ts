/**
 * JSON over HTTPS for the client side: one request, one bounded response,
 * the server checked by the trust mode before the request is written.
 * Transport failures become `ClientError`s; HTTP statuses are the caller's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { ClientError } from './errors.ts';
import { type Trust, verifiedConnector } from './trust.ts';

export interface JsonRequest {
  readonly url: URL;
  readonly method: 'GET' | 'POST' | 'PATCH';
  readonly trust: Trust;
  readonly body?: unknown;
  /** Sent as `Authorization: Bearer …`; never logged. */
  readonly bearer?: string;
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
}

export interface JsonResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The parsed body, or `undefined` when it was empty or not JSON. */
  readonly body: unknown;
}

const defaultTimeoutMs = 30_000;
const defaultMaxResponseBytes = 8 * 1024 * 1024;

/**
 * Checks a `--server` value: an `https:` URL with no credentials, query or
 * fragment. Answers the origin plus path, without a trailing slash.
 */
export function parseServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClientError('invalid_option', { message: `--server ${text} is not a URL` });
  }
  if (url.protocol !== 'https:') {
    throw new ClientError('invalid_option', { message: '--server must be an https:// URL' });
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ClientError('invalid_option', {
      message: '--server takes no credentials, query or fragment',
    });
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** Joins a server URL and an API path such as `/api/v1/enroll`. */
export function endpoint(server: URL, path: string, protocol = 'https:'): URL {
  const url = new URL(server.href);
  url.pathname = `${server.pathname.replace(/\/+$/, '')}${path}`;
  url.protocol = protocol;
  return url;
}

/** Sends one JSON request and reads the whole (bounded) answer. */
export function requestJson(options: JsonRequest): Promise<JsonResponse> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  if (options.bearer !== undefined) headers['authorization'] = `Bearer ${options.bearer}`;

  return new Promise((resolve, reject) => {
    const req = request(options.url, {
      method: options.method,
      headers,
      createConnection: verifiedConnector(options.trust) as never,
      timeout: options.timeoutMs ?? defaultTimeoutMs,
    });
    req.on('timeout', () => {
      req.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' }));
    });
    req.on('error', (error) => reject(asTransportError(error, options.url)));
    req.on('response', (res) => {
      const limit = options.maxResponseBytes ?? defaultMaxResponseBytes;
      const chunks: Buffer[] = [];
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > limit) {
          res.destroy();
          reject(new ClientError('bad_response', { message: `the answer exceeds ${limit} bytes` }));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => reject(asTransportError(error, options.url)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(text) });
      });
    });
    req.end(payload);
  });
}

/** The delay a `Retry-After` header asks for, in ms; `undefined` when absent or unreadable. */
export function retryAfterMs(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const value = headers['retry-after'];
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1_000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The `{error: {code, message}}` of an error answer, when it has one. */
export function errorBodyOf(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== 'string') return undefined;
  return { code, message: typeof message === 'string' ? message : '' };
}

function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function asTransportError(error: unknown, url: URL): ClientError {
  if (error instanceof ClientError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new ClientError('server_unreachable', {
    message: `cannot reach ${url.host}: ${reason}`,
    cause: error,
  });
}
