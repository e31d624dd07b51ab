/**
 * CORS on every route (@fastify/cors, registered before the routes) and the Origin check of the
 * WebSocket endpoints, both against one allowlist (CORS_ORIGINS). An allowed origin is echoed back
 * (never `*` together with credentials); a preflight from any other origin gets no CORS headers.
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

/**
 * Whether a browser at `origin` may use the API. No Origin header (curl, servers) and a same-origin
 * request (Origin equal to the request's own host) are always allowed.
 */
export function originAllowed(
  origin: string | undefined,
  allowlist: readonly string[],
  host?: string,
): boolean {
  if (origin === undefined || origin === '') return true;
  const wanted = normalize(origin);
  if (
    host !== undefined &&
    (wanted === `http://${host.toLowerCase()}` || wanted === `https://${host.toLowerCase()}`)
  )
    return true;
  return allowlist.some((o) => o === '*' || normalize(o) === wanted);
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
