/**
 * API token text: `nxt_` followed by 32 random bytes in base64url (43 characters). Only the
 * SHA-256 of a token is ever stored; the prefix lets log scanners and secret scanners spot one.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Prefix of every API token. */
export const TOKEN_PREFIX = 'nxt_';

/** Random bytes in a token. */
const TOKEN_BYTES = 32;

/** A new random token. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Whether `text` has the shape of an API token (prefix and 43 base64url characters). */
export function isTokenShaped(text: string): boolean {
  return /^nxt_[A-Za-z0-9_-]{43}$/.test(text);
}

/** SHA-256 of a token, the only form in which it is stored. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
