/**
 * Authentication and authorization of every HTTP route, in one place: an onRequest hook reads the
 * bearer credential (`Authorization: Bearer ...`), asks the {@link Authenticator}, and checks the
 * route's scope from the table in scopes.ts. No or a bad credential: 401 with a WWW-Authenticate
 * challenge; a missing scope: 403. An onRoute hook writes the same rule into each route's OpenAPI
 * `security`. WebSocket handshakes do not pass through fastify: see ws.ts. Credentials never
 * reach a log line or an error body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { allowed, bearerCredential, type Authenticator, type Principal } from '../../auth/authenticator.js';
import type { TokenStore } from '../../auth/token-store.js';
import { isPublicRequest, routeAccess, type RouteAccess } from './scopes.js';

/** Settings of the API's authentication (absent from the app options: no authentication). */
export interface AuthSettings {
  authenticator: Authenticator;
  /** The token store, for the admin routes /api/v1/tokens (absent: no such routes). */
  tokens?: TokenStore;
  /** GET /metrics needs `read` (default false: public). */
  metricsAuth?: boolean;
}

/** Name of the OpenAPI security scheme. */
export const SECURITY_SCHEME = 'bearerAuth';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request, once authenticated (undefined on public routes or without auth). */
    principal?: Principal;
  }
}

/** Answer 401 (no or a bad credential) with a bearer challenge. */
export function sendUnauthorized(reply: FastifyReply, failure: 'missing' | 'invalid'): FastifyReply {
  const challenge =
    failure === 'missing'
      ? 'Bearer realm="nexus-telemetry"'
      : 'Bearer realm="nexus-telemetry", error="invalid_token"';
  return reply
    .status(401)
    .header('www-authenticate', challenge)
    .send({
      error: {
        code: 'UNAUTHORIZED',
        message:
          failure === 'missing'
            ? 'this endpoint needs a bearer token (Authorization: Bearer <token>)'
            : 'the bearer token is not valid (unknown, revoked, expired or wrongly signed)',
      },
    });
}

/** Answer 403: authenticated, but without the scope the route needs. */
export function sendForbidden(reply: FastifyReply, scope: string): FastifyReply {
  return reply
    .status(403)
    .header(
      'www-authenticate',
      `Bearer realm="nexus-telemetry", error="insufficient_scope", scope="${scope}"`,
    )
    .send({ error: { code: 'FORBIDDEN', message: `this endpoint needs the "${scope}" scope` } });
}

function describeAccess(access: RouteAccess): string {
  return access === 'public' ? 'Public.' : `Needs a bearer token with the \`${access}\` scope.`;
}

/**
 * Install the hooks on `app`. Call before any route is registered (hooks and onRoute apply to the
 * routes registered after them), and before the docs so /openapi.json shows each rule.
 */
export function installAuth(app: FastifyInstance, settings: AuthSettings): void {
  const rule = { metricsAuth: settings.metricsAuth ?? false };
  app.decorateRequest('principal', undefined);

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const method = methods.find((m) => m !== 'HEAD' && m !== 'OPTIONS') ?? methods[0] ?? 'GET';
    const access = routeAccess(method, route.url, rule);
    // A copy: route modules may share one schema object between routes.
    const schema = { ...(route.schema ?? {}) } as Record<string, unknown>;
    const description = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
    schema.security = access === 'public' ? [] : [{ [SECURITY_SCHEME]: [access] }];
    schema.description = `${description}${describeAccess(access)}`;
    route.schema = schema;
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const access = routeAccess(request.method, request.routeOptions.url, rule);
    if (access === 'public') return;
    if (isPublicRequest(request.method, request.routeOptions.url, request.query)) return;
    const outcome = await settings.authenticator.authenticate(
      bearerCredential(request.headers.authorization),
    );
    if (!outcome.ok) return sendUnauthorized(reply, outcome.failure);
    if (!allowed(outcome.principal, access)) return sendForbidden(reply, access);
    request.principal = outcome.principal;
  });
}

/**
 * Without authentication (AUTH=none), say so in the OpenAPI document: every operation gets an empty
 * `security` list (public), so the document is explicit, as linters (Redocly's `security-defined`)
 * ask. Call where {@link installAuth} would be called.
 */
export function declarePublic(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.schema = { ...(route.schema ?? {}), security: [] } as typeof route.schema;
  });
}
