/**
 * The one catalogue of error codes that Citadel Archer shows to the outside:
 * HTTP error bodies, `error` frames on the agent socket, and start-up
 * failures. Every code here is listed in `docs/ERRORS.md`, and a test fails
 * when the two disagree. Codes are stable once shipped: rename nothing.
 */

export interface ErrorSpec {
  /** HTTP status when the error answers a request. */
  readonly status: number;
  /** What happened, in words an operator or agent author can act on. */
  readonly message: string;
}

export const errorCatalogue = {
  https_required: { status: 308, message: 'Use HTTPS; the Location header says where.' },
  invalid_request: { status: 400, message: 'The request body or query is not valid.' },
  invalid_message: { status: 400, message: 'The socket message is not valid.' },
  unauthorized: { status: 401, message: 'Missing, malformed, unknown or revoked credentials.' },
  enrollment_refused: {
    status: 401,
    message: 'The enrollment secret is unknown, expired, revoked or used up.',
  },
  forbidden: { status: 403, message: 'The credentials lack the role this needs.' },
  not_found: { status: 404, message: 'No such resource.' },
  invalid_transition: { status: 409, message: 'That threat status change is not allowed.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Send the request body as application/json.' },
  rate_limited: { status: 429, message: 'Over budget; retry after the given delay.' },
  too_many_subscribers: {
    status: 429,
    message: 'This admin token holds as many feed sockets as it may; close one first.',
  },
  internal_error: { status: 500, message: 'The daemon failed; the fault is logged.' },
  storage_unavailable: {
    status: 503,
    message: 'The database is not reachable; retry after the given delay.',
  },
  overloaded: { status: 503, message: 'Too much work is queued; retry shortly.' },
  not_ready: { status: 503, message: 'The daemon is not ready.' },
  config_invalid: { status: 500, message: 'The configuration is not valid.' },
  data_dir_in_use: {
    status: 409,
    message: 'Another running citadel-archer holds the data directory.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** Every code, in catalogue order; the docs test compares against this. */
export const errorCodes = Object.keys(errorCatalogue) as ErrorCode[];

export interface CitadelErrorOptions {
  readonly message?: string;
  readonly cause?: unknown;
  /** Structured facts about the failure; safe to show to the caller. */
  readonly details?: Record<string, unknown>;
  /** For `rate_limited` and `storage_unavailable`: when to retry. */
  readonly retryAfterMs?: number;
}

/**
 * An error the daemon means to show: it carries a catalogue code, the HTTP
 * status that goes with it, and structured details. Anything else thrown is
 * a fault of ours and is answered as `internal_error`.
 */
export class CitadelError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, options: CitadelErrorOptions = {}) {
    super(options.message ?? errorCatalogue[code].message, { cause: options.cause });
    this.name = 'CitadelError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The JSON body of an HTTP error answer. */
  toBody(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    const body: { code: ErrorCode; message: string; details?: Record<string, unknown> } = {
      code: this.code,
      message: this.message,
    };
    if (this.details) body.details = this.details;
    return { error: body };
  }
}

export function isCitadelError(error: unknown): error is CitadelError {
  return error instanceof CitadelError;
}
