/**
 * Request rate limits (RATE_LIMIT requests per RATE_LIMIT_WINDOW), per authenticated principal when
 * authentication is on (token name or JWT subject: a client behind a shared proxy address keeps its
 * own budget) and per client address otherwise, with @fastify/rate-limit. Over the limit: 429
 * RATE_LIMITED with `Retry-After`. Liveness and readiness probes (/health, /ready) and /metrics are
 * never limited. Registered after the auth hook, so a refused credential costs nothing of anyone's
 * budget and a principal is known when the key is chosen.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NexusError } from '../errors.js';

/** Rate limit settings; `max` 0 turns limiting off. */
export interface RateLimitSettings {
  /** Requests allowed per window per key. */
  max: number;
  /** Window length, ms. */
  windowMs: number;
}

/** Paths never limited: probes and scrapes must see an overloaded server as it is. */
const EXEMPT = new Set(['/health', '/ready', '/metrics']);

/** The rate-limit key of a request: its principal when authenticated, else its address. */
export function rateLimitKey(request: FastifyRequest): string {
  const principal = (request as FastifyRequest & { principal?: { kind: string; subject: string } }).principal;
  return principal !== undefined ? `${principal.kind}:${principal.subject}` : `ip:${request.ip}`;
}

/** Register the limiter on `app` (before the routes it applies to). No-op when `max` is 0. */
export async function installRateLimit(app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  if (settings.max <= 0) return;
  await app.register(rateLimit, {
    global: true,
    max: settings.max,
    timeWindow: settings.windowMs,
    hook: 'preHandler',
    keyGenerator: rateLimitKey,
    allowList: (request) => EXEMPT.has(request.url.split('?')[0] ?? ''),
    // Thrown by the plugin: the API's error handler answers it in the one error shape (429).
    errorResponseBuilder: (_request, context) =>
      new NexusError(
        'RATE_LIMITED',
        `more than ${context.max} requests in ${context.after}; retry in ${Math.ceil(context.ttl / 1000)} s`,
      ),
  });
}
