/**
 * API scopes: `read` (queries and streams), `write` (remote write and other ingest endpoints) and
 * `admin` (services, dead letters, tokens). `admin` grants every scope; `read` and `write` are
 * independent, so a Prometheus remote-write token cannot read.
 */
import { NexusError } from '../errors.js';

/** Every scope, weakest first. */
export const SCOPES = ['read', 'write', 'admin'] as const;

/** One API scope. */
export type Scope = (typeof SCOPES)[number];

/** Whether `text` names a scope. */
export function isScope(text: string): text is Scope {
  return (SCOPES as readonly string[]).includes(text);
}

/**
 * Parse a scope list (`read,write` or `read write`). Unknown names throw BAD_REQUEST naming them;
 * duplicates are dropped; the result is in {@link SCOPES} order.
 */
export function parseScopes(text: string | readonly string[]): Scope[] {
  const names = (typeof text === 'string' ? text.split(/[\s,]+/) : text).filter((s) => s !== '');
  const unknown = names.filter((n) => !isScope(n));
  if (unknown.length > 0)
    throw new NexusError(
      'BAD_REQUEST',
      `unknown scope ${unknown.map((u) => JSON.stringify(u.slice(0, 40))).join(', ')} (scopes: ${SCOPES.join(', ')})`,
      { details: { parameter: 'scope' } },
    );
  if (names.length === 0)
    throw new NexusError('BAD_REQUEST', `no scope given (scopes: ${SCOPES.join(', ')})`, {
      details: { parameter: 'scope' },
    });
  return SCOPES.filter((s) => names.includes(s));
}

/** Whether a principal holding `held` may use something that needs `needed`. */
export function grants(held: readonly Scope[], needed: Scope): boolean {
  return held.includes('admin') || held.includes(needed);
}
