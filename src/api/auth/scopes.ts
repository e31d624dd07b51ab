/**
 * Which scope each route needs: the one table the API's auth hook consults. Routes are matched by
 * their registered URL pattern, so routes added later take the default: `read`. Public: /health,
 * /ready, /openapi.json, /docs, the dashboard's page and bundles (/, /index.html, /assets) (and
 * /metrics unless METRICS_AUTH is on); `write`: ingest endpoints
 * (Prometheus remote write); `admin`: services (hosts, pids), dead letters (raw input, file paths)
 * and tokens. A path no route serves needs `read` too, so unauthenticated clients cannot probe.
 */
import type { Scope } from '../../auth/scopes.js';

/** A route open to anyone, or the scope it needs. */
export type RouteAccess = 'public' | Scope;

/** Options of {@link routeAccess}. */
export interface RouteAccessOptions {
  /** Whether GET /metrics needs `read` (default: public, for scrapers on loopback). */
  metricsAuth?: boolean;
}

// '/', '/index.html' and '/assets': the dashboard's page and bundles (no data in them).
const PUBLIC_PATHS = new Set(['/health', '/ready', '/openapi.json', '/', '/index.html']);
const PUBLIC_PREFIXES = ['/docs', '/graphql/assets', '/assets'];
const WRITE_PATHS = new Set(['/api/v1/write']);
const WRITE_PREFIXES = ['/api/v1/ingest', '/api/v1/import'];
const ADMIN_PREFIXES = ['/api/v1/services', '/api/v1/dead-letters', '/api/v1/tokens'];

function under(url: string, prefix: string): boolean {
  return url === prefix || url.startsWith(`${prefix}/`);
}

/**
 * Public whatever the table says: GET /graphql without a `query` parameter, which answers
 * GraphiQL's page (static code and the starting documents, no data) or a 400. Every request the
 * page makes carries the token from its headers editor.
 */
export function isPublicRequest(method: string, url: string | undefined, query: unknown): boolean {
  const hasQuery = typeof query === 'object' && query !== null && 'query' in query;
  return (method === 'GET' || method === 'HEAD') && url === '/graphql' && !hasQuery;
}

/** The access rule of `method` on the route registered as `url` (undefined: no such route). */
export function routeAccess(
  method: string,
  url: string | undefined,
  options: RouteAccessOptions = {},
): RouteAccess {
  // CORS preflights carry no credentials by design.
  if (method === 'OPTIONS') return 'public';
  if (url === undefined) return 'read';
  if (PUBLIC_PATHS.has(url) || PUBLIC_PREFIXES.some((p) => under(url, p))) return 'public';
  if (url === '/metrics') return options.metricsAuth ? 'read' : 'public';
  if (ADMIN_PREFIXES.some((p) => under(url, p))) return 'admin';
  if (WRITE_PATHS.has(url) || WRITE_PREFIXES.some((p) => under(url, p))) return 'write';
  return 'read';
}
