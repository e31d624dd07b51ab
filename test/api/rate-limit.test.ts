/**
 * Rate limits (RATE_LIMIT per RATE_LIMIT_WINDOW): per client address without authentication, per
 * principal with it; 429 RATE_LIMITED in the API's error shape with the limiter's Retry-After;
 * probes and /metrics never limited; off by default.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { rateLimitKey } from '../../src/api/rate-limit.js';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

let runtime: EmbeddedRuntime | undefined;
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
});

async function start(extra: Record<string, string>): Promise<EmbeddedRuntime> {
  const config = loadConfig({}, { MEMORY: true, LOG_LEVEL: 'silent', CLUSTER_ID: 'rl', ...extra });
  runtime = await startEmbedded({ config, logger: createLogger('silent'), listen: false });
  return runtime;
}

const get = (r: EmbeddedRuntime, url: string, remoteAddress: string) =>
  r.app.inject({ method: 'GET', url, remoteAddress });

describe('rate limits', () => {
  it('allows RATE_LIMIT requests per window per address, then 429 RATE_LIMITED with Retry-After', async () => {
    const r = await start({ RATE_LIMIT: '3', RATE_LIMIT_WINDOW: '1m' });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await get(r, '/api/v1/clusters', '10.0.0.1')).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const refused = await get(r, '/api/v1/clusters', '10.0.0.1');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: expect.stringMatching(/^more than 3 requests in 1 minute; retry in \d+ s$/),
      },
    });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another address has its own budget; probes and /metrics are never limited.
    expect((await get(r, '/api/v1/clusters', '10.0.0.2')).statusCode).toBe(200);
    for (const path of ['/health', '/ready', '/metrics'])
      expect((await get(r, path, '10.0.0.1')).statusCode, path).toBe(200);
  });

  it('is off by default', async () => {
    const r = await start({});
    const codes = new Set<number>();
    for (let i = 0; i < 50; i++) codes.add((await get(r, '/api/v1/clusters', '10.0.0.1')).statusCode);
    expect([...codes]).toEqual([200]);
  });

  it('with tokens: each token has its own budget, even from one address; a bad token costs nothing', async () => {
    const r = await start({ RATE_LIMIT: '2', AUTH: 'token' });
    const store = tokenStoreOf(r.store)!;
    const a = (await store.create('rl-a', ['read'])).token;
    const b = (await store.create('rl-b', ['read'])).token;
    const as = (token: string) =>
      r.app.inject({
        method: 'GET',
        url: '/api/v1/clusters',
        remoteAddress: '10.0.0.9',
        headers: { authorization: `Bearer ${token}` },
      });
    // Refused credentials are answered 401 before the limiter counts anything.
    for (let i = 0; i < 3; i++) expect((await as('nxt_not-a-token')).statusCode).toBe(401);
    expect([(await as(a)).statusCode, (await as(a)).statusCode, (await as(a)).statusCode]).toEqual([
      200, 200, 429,
    ]);
    expect([(await as(b)).statusCode, (await as(b)).statusCode, (await as(b)).statusCode]).toEqual([
      200, 200, 429,
    ]);
  });

  it('keys an authenticated request by its principal, an anonymous one by its address', () => {
    const withPrincipal = { ip: '10.0.0.1', principal: { kind: 'token', subject: 'grafana' } };
    expect(rateLimitKey(withPrincipal as unknown as FastifyRequest)).toBe('token:grafana');
    expect(rateLimitKey({ ip: '10.0.0.1' } as unknown as FastifyRequest)).toBe('ip:10.0.0.1');
  });
});
