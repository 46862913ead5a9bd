/**
 * A thin client of the admin API: one authenticated JSON request per call,
 * an error answer turned into an `api_error` that carries the server's own
 * code and message.
 */
import { ClientError } from '../../agent/errors.ts';
import { endpoint, errorBodyOf, requestJson } from '../../agent/https-json.ts';
import type { Connection } from './options.ts';

export type Query = Record<string, string | number | undefined>;

export interface CallOptions {
  readonly query?: Query;
  readonly body?: unknown;
}

/** Calls the admin API with a bearer token. */
export class AdminApi {
  readonly #connection: Connection;
  readonly #token: string;

  constructor(connection: Connection, token: string) {
    this.#connection = connection;
    this.#token = token;
  }

  get(path: string, query?: Query): Promise<unknown> {
    return this.call('GET', path, query === undefined ? {} : { query });
  }

  post(path: string, body: unknown = {}): Promise<unknown> {
    return this.call('POST', path, { body });
  }

  patch(path: string, body: unknown): Promise<unknown> {
    return this.call('PATCH', path, { body });
  }

  /** Sends the request; resolves with the JSON body of a 2xx answer. */
  async call(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    options: CallOptions,
  ): Promise<unknown> {
    const url = endpoint(this.#connection.server, path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const response = await requestJson({
      url,
      method,
      trust: this.#connection.trust,
      bearer: this.#token,
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    if (response.status >= 200 && response.status < 300) return response.body ?? null;

    const error = errorBodyOf(response.body);
    throw new ClientError('api_error', {
      message: error?.message || `the server answered HTTP ${response.status}`,
      serverCode: error?.code ?? `http_${response.status}`,
      status: response.status,
    });
  }
}

/** A path segment from user input, escaped so it cannot change the path. */
export function segment(value: string): string {
  if (value.trim() === '') throw new ClientError('invalid_option', { message: 'an id is empty' });
  return encodeURIComponent(value);
}
