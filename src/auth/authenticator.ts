/**
 * Turns a bearer credential into a {@link Principal}: an API token (`nxt_...`, looked up by hash in
 * the token store) or a JWT (verified against the issuer's JWKS), as the auth mode allows. Accepted
 * credentials are cached for a second per process; `forget()` empties the cache (a revocation made
 * through this process is refused at once, one made elsewhere within a second). The credential
 * itself is kept out of the principal so a principal can be logged.
 */
import { createHash } from 'node:crypto';
import type { JwtVerifier } from './jwt.js';
import { grants, type Scope } from './scopes.js';
import { TOKEN_PREFIX } from './tokens.js';
import type { TokenStore } from './token-store.js';

/** Who made a request. */
export interface Principal {
  kind: 'token' | 'jwt';
  /** Token name, or the JWT's `sub`. */
  subject: string;
  scopes: Scope[];
  /** When the credential stops being valid (JWT `exp`), ms since the epoch. */
  expiresAtMs?: number;
}

/** Why a credential was refused: none given, or not valid (unknown, revoked, expired, bad signature). */
export type AuthFailure = 'missing' | 'invalid';

/** Outcome of {@link Authenticator.authenticate}. */
export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; failure: AuthFailure };

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** API tokens (absent: tokens are not accepted). */
  tokens?: TokenStore;
  /** JWT verification (absent: JWTs are not accepted). */
  jwt?: JwtVerifier;
  /** How long an accepted credential is trusted without asking again (default 1000 ms). */
  cacheMs?: number;
  now?: () => number;
}

/** Most cached credentials; the cache is emptied when it grows past this. */
const CACHE_LIMIT = 10_000;

/** The bearer credential of an Authorization header value, or undefined. */
export function bearerCredential(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/** Checks credentials against the token store and the JWT issuer. */
export class Authenticator {
  readonly #tokens: TokenStore | undefined;
  readonly #jwt: JwtVerifier | undefined;
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { principal: Principal; until: number }>();
  /** The credential behind each principal, for {@link recheck} (never exposed). */
  readonly #credentials = new WeakMap<Principal, string>();

  constructor(options: AuthenticatorOptions) {
    this.#tokens = options.tokens;
    this.#jwt = options.jwt;
    this.#cacheMs = options.cacheMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Check a credential (undefined or empty: missing). */
  async authenticate(credential: string | undefined): Promise<AuthOutcome> {
    if (credential === undefined || credential === '') return { ok: false, failure: 'missing' };
    const key = createHash('sha256').update(credential).digest('base64url');
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached && cached.until > now && !expired(cached.principal, now))
      return { ok: true, principal: cached.principal };
    const principal = await this.#verify(credential);
    if (principal === undefined || expired(principal, now)) {
      this.#cache.delete(key);
      return { ok: false, failure: 'invalid' };
    }
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(key, { principal, until: now + this.#cacheMs });
    this.#credentials.set(principal, credential);
    return { ok: true, principal };
  }

  /** Whether `principal`'s credential is still valid (not revoked, not expired). */
  async recheck(principal: Principal): Promise<boolean> {
    const credential = this.#credentials.get(principal);
    if (credential === undefined) return false;
    const outcome = await this.authenticate(credential);
    return outcome.ok;
  }

  /** Drop every cached credential (after a revocation). */
  forget(): void {
    this.#cache.clear();
  }

  async #verify(credential: string): Promise<Principal | undefined> {
    if (credential.startsWith(TOKEN_PREFIX)) {
      const record = await this.#tokens?.lookup(credential);
      return record && { kind: 'token', subject: record.name, scopes: record.scopes };
    }
    const verified = await this.#jwt?.(credential);
    if (verified === undefined) return undefined;
    return {
      kind: 'jwt',
      subject: verified.subject,
      scopes: verified.scopes,
      ...(verified.expiresAtMs === undefined ? {} : { expiresAtMs: verified.expiresAtMs }),
    };
  }
}

function expired(principal: Principal, now: number): boolean {
  return principal.expiresAtMs !== undefined && principal.expiresAtMs <= now;
}

/** Whether `principal` may use something needing `scope`. */
export function allowed(principal: Principal, scope: Scope): boolean {
  return grants(principal.scopes, scope);
}
