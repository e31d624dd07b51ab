/**
 * The dashboard's routes (src/api/web/dashboard.ts) on a bare Fastify app: the page with `no-cache`,
 * hashed assets cached for a year, the path deep-link fallback for browsers only, the JSON 404 kept
 * for API paths, 503 WEB_NOT_BUILT before a build, and which of its routes are public.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeAccess } from '../../src/api/auth/scopes.js';
import { installErrorHandling } from '../../src/api/errors.js';
import { dashboardPlugin } from '../../src/api/web/dashboard.js';

const dir = mkdtempSync(join(tmpdir(), 'nexus-dashboard-route-'));
const PAGE =
  '<!doctype html><title>fleet</title><script type="module" src="/assets/index-abc123.js"></script>';
const html = { accept: 'text/html,application/xhtml+xml' };

async function appFor(root: string): Promise<FastifyInstance> {
  const app = Fastify();
  installErrorHandling(app);
  app.get('/api/v1/clusters', async () => []);
  await app.register(dashboardPlugin, { dir: root });
  await app.ready();
  return app;
}

let built: FastifyInstance;
let missing: FastifyInstance;

beforeAll(async () => {
  mkdirSync(join(dir, 'built', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'built', 'index.html'), PAGE);
  writeFileSync(join(dir, 'built', 'assets', 'index-abc123.js'), 'console.log(1);\n');
  built = await appFor(join(dir, 'built'));
  missing = await appFor(join(dir, 'not-built'));
});

afterAll(async () => {
  await built?.close();
  await missing?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dashboard routes', () => {
  it('answers the page at / and /index.html, never cached, with a strict CSP', async () => {
    for (const url of ['/', '/index.html']) {
      const r = await built.inject({ url });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toContain("default-src 'self'");
      expect(r.body).toBe(PAGE);
    }
  });

  it('serves hashed assets as immutable for a year; an unknown asset is the JSON 404', async () => {
    const r = await built.inject({ url: '/assets/index-abc123.js' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.body).toBe('console.log(1);\n');
    const gone = await built.inject({ url: '/assets/nope.js' });
    expect(gone.statusCode).toBe(404);
  });

  it('answers path deep links with the page for browsers only, and never shadows the API', async () => {
    const deep = await built.inject({ url: '/clusters/c/hosts/h?metric=x', headers: html });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toBe(PAGE);
    const script = await built.inject({ url: '/clusters/c/hosts/h' });
    expect(script.statusCode).toBe(404);
    expect(script.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'Route GET /clusters/c/hosts/h not found' },
    });
    for (const url of [
      '/api/v1/nope',
      '/graphql/x',
      '/ws/x',
      '/metrics/x',
      '/docs/x',
      '/federate/x',
      '/health/x',
    ]) {
      const r = await built.inject({ url, headers: html });
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error.code, url).toBe('NOT_FOUND');
    }
    expect((await built.inject({ url: '/api/v1/clusters', headers: html })).json()).toEqual([]);
  });

  it('answers 503 WEB_NOT_BUILT naming npm run build before a build', async () => {
    for (const url of ['/', '/clusters/c']) {
      const r = await missing.inject({ url, headers: html });
      expect(r.statusCode).toBe(503);
      expect(r.json().error.code).toBe('WEB_NOT_BUILT');
      expect(r.json().error.message).toContain('npm run build');
    }
  });

  it('makes the page and the assets public; the fallback and unknown paths still need read', () => {
    expect(routeAccess('GET', '/')).toBe('public');
    expect(routeAccess('GET', '/index.html')).toBe('public');
    expect(routeAccess('GET', '/assets/*')).toBe('public');
    expect(routeAccess('GET', '/*')).toBe('read');
    expect(routeAccess('GET', undefined)).toBe('read');
  });
});
