/**
 * The failures the client side of Citadel Archer (the reference agent and the
 * `feed` and `admin` commands) can meet, each with a stable code. The code
 * decides whether a caller retries, and which exit status a command ends
 * with; the message says what to do about it.
 */

/** Process exit statuses shared by the `agent`, `feed` and `admin` commands. */
export const exitStatus = Object.freeze({
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
});

export interface ClientErrorSpec {
  /** Whether trying again later can succeed without anyone changing anything. */
  readonly retryable: boolean;
  /** The exit status a command ends with when this error stops it. */
  readonly exitStatus: number;
  readonly message: string;
}

export const clientErrorCatalogue = {
  invalid_option: {
    retryable: false,
    exitStatus: exitStatus.usage,
    message: 'An option or argument is not valid.',
  },
  server_unreachable: {
    retryable: true,
    exitStatus: exitStatus.unreachable,
    message: 'The server could not be reached.',
  },
  tls_pin_mismatch: {
    retryable: false,
    exitStatus: exitStatus.unreachable,
    message: 'The server certificate does not match the pinned fingerprint.',
  },
  tls_untrusted: {
    retryable: false,
    exitStatus: exitStatus.unreachable,
    message: 'The server certificate is not trusted; pass --ca FILE or --pin sha256:HEX.',
  },
  bad_response: {
    retryable: true,
    exitStatus: exitStatus.failed,
    message: 'The server sent an answer that does not follow the protocol.',
  },
  api_error: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The server refused the request.',
  },
  server_busy: {
    retryable: true,
    exitStatus: exitStatus.failed,
    message: 'The server is over budget or unavailable; retry later.',
  },
  enrollment_refused: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The server refused the enrollment secret.',
  },
  no_enrollment_secret: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The agent needs an enrollment secret: pass --enroll-secret-file FILE.',
  },
  identity_rejected: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The server rejected the agent token and no enrollment secret is available.',
  },
  state_unusable: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The state directory cannot be used; check its path, owner and contents.',
  },
  invalid_report: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'The threat report is not valid.',
  },
  outbox_full: {
    retryable: true,
    exitStatus: exitStatus.failed,
    message: 'The outbox holds too many unacknowledged reports.',
  },
  rules_invalid: {
    retryable: false,
    exitStatus: exitStatus.usage,
    message: 'The detection rule file is not valid; the message names the rule and field.',
  },
  detector_unavailable: {
    retryable: false,
    exitStatus: exitStatus.failed,
    message: 'A detector cannot run on this host; the message says what it needs.',
  },
} as const satisfies Record<string, ClientErrorSpec>;

export type ClientErrorCode = keyof typeof clientErrorCatalogue;

export interface ClientErrorOptions {
  readonly message?: string;
  readonly cause?: unknown;
  /** Facts about the failure that are safe to log and show. */
  readonly details?: Record<string, unknown>;
  /** When the server said how long to wait before retrying. */
  readonly retryAfterMs?: number;
  /** For `api_error`: the HTTP status and the server's own error code. */
  readonly status?: number;
  readonly serverCode?: string;
}

/** A failure of the client side, with a stable code from the catalogue. */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly retryable: boolean;
  readonly exitStatus: number;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;

  constructor(code: ClientErrorCode, options: ClientErrorOptions = {}) {
    const spec: ClientErrorSpec = clientErrorCatalogue[code];
    super(options.message ?? spec.message, { cause: options.cause });
    this.name = 'ClientError';
    this.code = code;
    this.retryable = spec.retryable;
    this.exitStatus = spec.exitStatus;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
    this.serverCode = options.serverCode;
  }
}

/** Whether a value is a `ClientError`, optionally of one code. */
export function isClientError(error: unknown, code?: ClientErrorCode): error is ClientError {
  return error instanceof ClientError && (code === undefined || error.code === code);
}
