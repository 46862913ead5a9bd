/**
 * The enrollment client: trades an enrollment secret for an agent id and a
 * token (`POST /api/v1/enroll`). Refusals are sorted by whether waiting can
 * help: a refused secret cannot, a budget or an unavailable server can.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ClientError } from './errors.ts';
import { endpoint, errorBodyOf, requestJson, retryAfterMs } from './https-json.ts';
import type { Trust } from './trust.ts';

export interface EnrollmentRequest {
  readonly server: URL;
  readonly trust: Trust;
  readonly hostname: string;
  readonly machineId?: string;
  /** The enrollment secret; sent once, never logged. */
  readonly secret: string;
}

export interface Enrollment {
  readonly agentId: string;
  readonly token: string;
  readonly tokenExpiresAt: string;
  readonly heartbeatIntervalS: number;
}

const enrollmentSchema = z.object({
  agent_id: z.string().min(1),
  token: z.string().min(1),
  token_expires_at: z.string().min(1),
  heartbeat_interval_s: z.number().positive(),
});

/**
 * Enrolls the agent. Throws `enrollment_refused` for a refused secret,
 * `server_busy` (with `retryAfterMs` when known) for 429 and 5xx answers,
 * `api_error` for other refusals and `server_unreachable` or a TLS error when
 * the server was not reached.
 */
export async function enroll(request: EnrollmentRequest): Promise<Enrollment> {
  const body: Record<string, string> = {
    hostname: request.hostname,
    enrollment_secret: request.secret,
  };
  if (request.machineId !== undefined) body['machine_id'] = request.machineId;

  const response = await requestJson({
    url: endpoint(request.server, '/api/v1/enroll'),
    method: 'POST',
    trust: request.trust,
    body,
  });

  if (response.status === 200 || response.status === 201) {
    const parsed = enrollmentSchema.safeParse(response.body);
    if (!parsed.success) {
      throw new ClientError('bad_response', { message: 'the enrollment answer is malformed' });
    }
    return {
      agentId: parsed.data.agent_id,
      token: parsed.data.token,
      tokenExpiresAt: parsed.data.token_expires_at,
      heartbeatIntervalS: parsed.data.heartbeat_interval_s,
    };
  }

  const error = errorBodyOf(response.body);
  const detail = error ? `${error.code}: ${error.message}` : `HTTP ${response.status}`;
  if (response.status === 401) {
    throw new ClientError('enrollment_refused', {
      message: `the server refused the enrollment secret (${detail})`,
      status: response.status,
      serverCode: error?.code,
    });
  }
  if (response.status === 429 || response.status >= 500) {
    throw new ClientError('server_busy', {
      message: `enrollment is not possible now (${detail})`,
      status: response.status,
      serverCode: error?.code,
      retryAfterMs: retryAfterMs(response.headers),
    });
  }
  throw new ClientError('api_error', {
    message: `the server refused the enrollment (${detail})`,
    status: response.status,
    serverCode: error?.code,
  });
}

/**
 * Reads the enrollment secret from its file, each time one is needed, so a
 * replaced file is seen. No file given is no secret (`undefined`); a file
 * given but unreadable or empty throws `no_enrollment_secret` naming the
 * file and the reason, since no later attempt would read it any better.
 */
export async function readEnrollmentSecretFile(
  path: string | undefined,
): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ClientError('no_enrollment_secret', {
      message: `the enrollment secret file ${path} cannot be read: ${(error as Error).message}`,
      cause: error,
      details: { path },
    });
  }
  const secret = text.trim();
  if (secret !== '') return secret;
  throw new ClientError('no_enrollment_secret', {
    message: `the enrollment secret file ${path} is empty`,
    details: { path },
  });
}
