/**
 * Plain HTTP requests with every header under the test's control (`Host`
 * included) and an optional source address, plus raw exchanges for requests
 * no HTTP client would send.
 */
import { request } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';

export interface PlainRequest {
  readonly host: string;
  readonly port: number;
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** The source address to connect from, e.g. 127.0.0.2. */
  readonly localAddress?: string;
  readonly body?: string;
}

export interface PlainResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The socket's own address, as the server saw the peer. */
  readonly localAddress: string | undefined;
}

export function plainRequest(options: PlainRequest): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: options.host,
        port: options.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers ?? {},
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            localAddress: res.socket?.localAddress,
          }),
        );
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes bytes as they are and returns everything the server sent before closing. */
export function rawExchange(
  target: { host: string; port: number; tls?: { ca: string } },
  bytes: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = target.tls
      ? connectTls({ host: target.host, port: target.port, ca: target.tls.ca })
      : connectTcp({ host: target.host, port: target.port });
    let received = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in time')));
    socket.on(target.tls ? 'secureConnect' : 'connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

/** The header block of a raw answer, as lower-case names. */
export function headersOf(raw: string): { status: number; headers: Record<string, string> } {
  const [head = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const cut = line.indexOf(':');
    headers[line.slice(0, cut).trim().toLowerCase()] = line.slice(cut + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}
