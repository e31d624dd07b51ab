/**
 * CORS on every route (@fastify/cors, registered before the routes) and the Origin check of the
 * WebSocket endpoints, both against one allowlist (CORS_ORIGINS). An allowed origin is echoed back
 * (never `*` together with credentials); a preflight from any other origin gets no CORS headers.
 * WebSocket handshakes from a page of the server's own origin are allowed too, but only when the
 * request's Host is a name the server is known by (loopback, an IP address, a listed origin's host):
 * a Host that merely equals the Origin proves nothing under DNS rebinding.
 */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/** CORS settings of the API. */
export interface CorsSettings {
  /** Origins allowed to call the API from a browser, e.g. `http://localhost:3000`; `*` allows any. */
  origins: readonly string[];
  /** Send `Access-Control-Allow-Credentials: true` (refused together with `*`). */
  credentials?: boolean;
}

/** Default allowlist (a dashboard dev server and the API's own port). */
export const DEFAULT_CORS_ORIGINS = ['http://localhost:3000', 'http://localhost:8080'] as const;

/** Response headers browsers may read. */
const EXPOSED_HEADERS = ['x-has-more', 'x-resolution', 'x-request-id', 'retry-after'];
/** Request headers browsers may send. */
const ALLOWED_HEADERS = ['content-type', 'accept', 'authorization', 'x-request-id'];

/** Normalise an origin for comparison: lower-case scheme and host, no trailing slash. */
function normalize(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

/** Host names a browser reaches only on this machine: DNS cannot rebind them. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
/** Wildcard listen addresses: they name no host a browser could use. */
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]', '*']);

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** The host name of a Host header value or an origin's authority (`[::1]:8080` -> `[::1]`). */
function hostName(authority: string): string {
  const lower = authority.trim().toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  return colon === -1 ? lower : lower.slice(0, colon);
}

/** The host name of an origin (`https://dash.example.com:8443` -> `dash.example.com`), if it has one. */
function originHostName(origin: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(origin.trim());
  return match ? hostName(match[1]!) : undefined;
}

/**
 * Whether `host` (a Host header, port optional) is a name this server is known by, so that a page
 * whose origin is that host really is this server's own page. A name outside this set may be an
 * attacker's domain rebound to this server's address (DNS rebinding): the browser then sends the
 * attacker's name as both Origin and Host. Known: loopback (`localhost`, `127.0.0.1`, `[::1]`), any IP
 * address literal (a page served from `http://10.0.0.5:8080` is this server's; DNS plays no part),
 * the host names of the allowlisted origins, and `serverHosts` (the configured listen address when it
 * is a name; wildcards such as `0.0.0.0` are ignored).
 */
export function isKnownHost(
  host: string,
  allowlist: readonly string[] = [],
  serverHosts: readonly string[] = [],
): boolean {
  const name = hostName(host);
  if (name === '') return false;
  if (LOOPBACK_NAMES.has(name) || IPV4.test(name) || (name.startsWith('[') && name.endsWith(']')))
    return true;
  if (serverHosts.some((h) => !WILDCARD_HOSTS.has(h.trim()) && hostName(h) === name)) return true;
  return allowlist.some((o) => o !== '*' && originHostName(o) === name);
}

/**
 * Whether a browser at `origin` may use the API. No Origin header (curl, servers, the `ws` library)
 * is always allowed; a listed origin (or `*`) is allowed. A same-origin request (Origin equal to the
 * request's own `host`) is allowed only when that host is one the server is known by
 * ({@link isKnownHost}): under DNS rebinding an attacker's page sends Origin `http://evil.example:8080`
 * with Host `evil.example:8080`, which match but name no host of this server.
 */
export function originAllowed(
  origin: string | undefined,
  allowlist: readonly string[],
  host?: string,
  serverHosts: readonly string[] = [],
): boolean {
  if (origin === undefined || origin === '') return true;
  const wanted = normalize(origin);
  if (allowlist.some((o) => o === '*' || normalize(o) === wanted)) return true;
  if (host === undefined) return false;
  const own = host.trim().toLowerCase();
  const sameOrigin = wanted === `http://${own}` || wanted === `https://${own}`;
  return sameOrigin && isKnownHost(own, allowlist, serverHosts);
}

/** Register CORS handling for every route of `app` (call before registering routes). */
export async function registerCors(app: FastifyInstance, settings: CorsSettings): Promise<void> {
  const any = settings.origins.includes('*');
  if (any && settings.credentials) {
    throw new Error('CORS: credentials cannot be combined with the * origin; list the origins instead');
  }
  await app.register(cors, {
    // No Origin header: not a browser cross-origin request, so no CORS headers at all.
    origin: any
      ? '*'
      : (origin, callback) => callback(null, origin !== undefined && originAllowed(origin, settings.origins)),
    credentials: !any && settings.credentials === true,
    methods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
