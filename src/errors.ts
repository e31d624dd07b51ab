/**
 * Coded errors: every error the pipeline raises on purpose carries a stable code, an HTTP status
 * for the API edge, whether retrying may help, and the underlying cause.
 */

/** Every error code, with its HTTP status and whether it is retryable. Keep docs/errors.md in step. */
export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  AMBIGUOUS_GPU_ID: { status: 400, retryable: false },
  CONFIG_INVALID: { status: 500, retryable: false },
  QUEUE_CLOSED: { status: 503, retryable: false },
  STORE_CLOSED: { status: 503, retryable: false },
  COORDINATION_CLOSED: { status: 503, retryable: false },
  COMPACTED: { status: 410, retryable: false },
  LEASE_LOST: { status: 503, retryable: true },
  BACKEND_UNAVAILABLE: { status: 503, retryable: true },
  INPUT_UNREADABLE: { status: 400, retryable: false },
  INTERNAL: { status: 500, retryable: false },
  DATA_DIR_LOCKED: { status: 409, retryable: false },
  AMBIGUOUS_UUID: { status: 409, retryable: false },
  READ_BUDGET_EXCEEDED: { status: 422, retryable: false },
  READ_TIMEOUT: { status: 503, retryable: true },
  OVERLOADED: { status: 503, retryable: true },
  UNAUTHORIZED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  RATE_LIMITED: { status: 429, retryable: true },
  WEB_NOT_BUILT: { status: 503, retryable: false },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code; `status` and `retryable` come from {@link ERROR_CODES}. */
export class NexusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  /** Extra structured detail (e.g. the offending parameter, the compact revision). */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'NexusError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
    this.details = options.details ?? {};
  }
}

/** True when `error` is a NexusError with the given code. */
export function hasCode(error: unknown, code: ErrorCode): error is NexusError {
  return error instanceof NexusError && error.code === code;
}

/** True when retrying the failed operation may succeed. */
export function isRetryable(error: unknown): boolean {
  return error instanceof NexusError && error.retryable;
}
