/**
 * Bearer JWTs from an OIDC issuer: the signature is checked against the issuer's JWKS (fetched and
 * cached by jose, refetched when an unknown key id appears), then `iss`, `aud`, `exp` and `nbf`;
 * the scopes come from one claim (space-separated text, or an array), unknown names ignored.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { isScope, type Scope } from './scopes.js';

/** Settings of {@link createJwtVerifier} (JWT_* variables). */
export interface JwtSettings {
  /** URL of the issuer's JSON Web Key Set. */
  jwksUrl: string;
  /** Required `iss`; absent: any. */
  issuer?: string;
  /** Required `aud`; absent: any. */
  audience?: string;
  /** Claim holding the scopes (default `scope`). */
  scopeClaim?: string;
  /** Tolerated clock difference in seconds (default 30). */
  clockToleranceSec?: number;
}

/** A verified JWT: its subject, scopes and expiry. */
export interface VerifiedJwt {
  subject: string;
  scopes: Scope[];
  /** `exp` in ms since the epoch, when the token has one. */
  expiresAtMs?: number;
}

/** Verifies bearer JWTs; resolves undefined for any token it does not accept. */
export type JwtVerifier = (token: string) => Promise<VerifiedJwt | undefined>;

/** Whether `text` has the shape of a compact JWS (three base64url parts). */
export function isJwtShaped(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}

/** The scopes in `claim` of `payload` (string or string array), known names only. */
export function scopesFromClaim(payload: JWTPayload, claim: string): Scope[] {
  const value = payload[claim];
  const names = typeof value === 'string' ? value.split(/\s+/) : Array.isArray(value) ? value : [];
  const scopes = new Set<Scope>();
  for (const name of names) if (typeof name === 'string' && isScope(name)) scopes.add(name);
  return [...scopes];
}

/** A verifier for tokens of one issuer. */
export function createJwtVerifier(settings: JwtSettings, onRefused?: (reason: string) => void): JwtVerifier {
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl));
  const claim = settings.scopeClaim ?? 'scope';
  return async (token) => {
    if (!isJwtShaped(token)) return undefined;
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: settings.issuer,
        audience: settings.audience,
        clockTolerance: settings.clockToleranceSec ?? 30,
      });
      return {
        subject: typeof payload.sub === 'string' ? payload.sub : 'jwt',
        scopes: scopesFromClaim(payload, claim),
        ...(typeof payload.exp === 'number' ? { expiresAtMs: payload.exp * 1000 } : {}),
      };
    } catch (error) {
      // jose's codes (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ...) never hold the token.
      onRefused?.((error as { code?: string }).code ?? 'ERR_JWT_INVALID');
      return undefined;
    }
  };
}
