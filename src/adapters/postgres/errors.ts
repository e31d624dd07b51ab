/**
 * Mapping of node-postgres errors to coded errors: a lost or refused connection, a server shutting
 * down, too many connections, a transient conflict or a lock timeout become BACKEND_UNAVAILABLE
 * (retryable); authentication failure or a missing database become CONFIG_INVALID; the rest
 * INTERNAL. Messages name the target (host:port/database), never the password.
 */
import { NexusError } from '../../errors.js';
import { sqlState } from '../../storage/sql-executor.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

// node-postgres raises these as plain Errors without a code.
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'is not queryable',
  'Cannot use a pool after calling end',
  'Query read timeout',
  'connection timeout',
];

// SQLSTATEs where retrying later may succeed (55P03: lock_timeout, e.g. while a partition is created).
const RETRYABLE_STATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53400',
  '40001',
  '40P01',
  '55006',
  '55P03',
]);

// Node's codes for a server certificate the TLS settings do not accept (chain or host name).
const CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when `error` means the server could not be reached or dropped the connection. */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith('08') || RETRYABLE_STATES.has(state);
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  const message = error instanceof Error ? error.message : '';
  return CONNECTION_MESSAGES.some((m) => message.includes(m));
}

/** Replace every occurrence of the secrets (raw and URL-encoded) in `text`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join('***').split(encodeURIComponent(secret)).join('***');
  }
  return out;
}

/** Map any error from the pg driver to a NexusError. */
export function mapPostgresError(
  error: unknown,
  operation: string,
  target: string,
  passwords: readonly string[],
): NexusError {
  if (error instanceof NexusError) return error;
  const raw = error instanceof Error ? error.message || error.name : String(error);
  const detailMessage = redact(raw, passwords);
  const state = sqlState(error);
  const details: Record<string, unknown> = { operation, target };
  if (state !== undefined) details.sqlState = state;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CERTIFICATE_CODES.has(code)) {
    details.tlsError = code;
    return new NexusError(
      'CONFIG_INVALID',
      `PostgreSQL ${target}: TLS server certificate not accepted (${code}: ${detailMessage}); check DB_SSLROOTCERT / sslrootcert and the host name against DB_SSLMODE`,
      { cause: error, details },
    );
  }
  if (isConnectionError(error)) {
    return new NexusError(
      'BACKEND_UNAVAILABLE',
      `PostgreSQL ${target} unavailable during ${operation}: ${detailMessage}`,
      {
        cause: error,
        details,
      },
    );
  }
  if (state !== undefined && (state.startsWith('28') || state === '3D000')) {
    return new NexusError(
      'CONFIG_INVALID',
      `PostgreSQL ${target} refused the configured login: ${detailMessage}`,
      {
        cause: error,
        details,
      },
    );
  }
  return new NexusError('INTERNAL', `PostgreSQL ${operation} failed: ${detailMessage}`, {
    cause: error,
    details,
  });
}
