/**
 * The pieces of authentication that need no server: scope parsing and granting, the route table,
 * token text, the AUTH / JWT / TLS / *_FILE configuration, the loopback rule and the bind check,
 * and the token store on a real (in-memory) PGlite database.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { checkBind, insecureBind } from '../../src/api/auth/from-config.js';
import { CREDENTIAL_LOG_PATHS } from '../../src/api/auth/redact.js';
import { routeAccess } from '../../src/api/auth/scopes.js';
import { credentialFromAuthMessage, credentialFromInitPayload } from '../../src/api/auth/ws.js';
import { Authenticator, bearerCredential } from '../../src/auth/authenticator.js';
import { scopesFromClaim } from '../../src/auth/jwt.js';
import { grants, parseScopes } from '../../src/auth/scopes.js';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { generateToken, hashToken, isTokenShaped } from '../../src/auth/tokens.js';
import { isLoopbackHost, loadConfig } from '../../src/config/config.js';

const work = mkdtempSync(join(tmpdir(), 'nexus-auth-rules-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('scopes', () => {
  it('parses lists in order without duplicates and refuses unknown names', () => {
    expect(parseScopes('write, read read')).toEqual(['read', 'write']);
    expect(parseScopes(['admin'])).toEqual(['admin']);
    expect(() => parseScopes('read,root')).toThrow(/unknown scope "root"/);
    expect(() => parseScopes('')).toThrow(/no scope/);
  });

  it('lets admin do everything, and keeps read and write apart', () => {
    expect(grants(['admin'], 'read')).toBe(true);
    expect(grants(['admin'], 'write')).toBe(true);
    expect(grants(['write'], 'read')).toBe(false);
    expect(grants(['read'], 'write')).toBe(false);
    expect(grants(['read'], 'admin')).toBe(false);
  });

  it('reads JWT scopes from text or an array, ignoring unknown names', () => {
    expect(scopesFromClaim({ scope: 'openid read profile write' }, 'scope')).toEqual(['read', 'write']);
    expect(scopesFromClaim({ roles: ['admin', 'x'] }, 'roles')).toEqual(['admin']);
    expect(scopesFromClaim({ scope: 7 }, 'scope')).toEqual([]);
  });
});

describe('route table', () => {
  it.each([
    ['GET', '/health', 'public'],
    ['GET', '/ready', 'public'],
    ['GET', '/openapi.json', 'public'],
    ['GET', '/docs/static/index.html', 'public'],
    ['OPTIONS', '/api/v1/clusters', 'public'],
    ['GET', '/metrics', 'public'],
    ['GET', '/api/v1/clusters/:clusterId', 'read'],
    ['POST', '/graphql', 'read'],
    ['GET', '/api/v1/query', 'read'],
    ['POST', '/api/v1/query_range', 'read'],
    ['GET', '/federate', 'read'],
    ['GET', '/api/v1/targets', 'read'],
    ['POST', '/api/v1/write', 'write'],
    ['GET', '/api/v1/services', 'admin'],
    ['GET', '/api/v1/dead-letters', 'admin'],
    ['DELETE', '/api/v1/tokens/:id', 'admin'],
    ['GET', undefined, 'read'],
  ] as const)('%s %s is %s', (method, url, access) => {
    expect(routeAccess(method, url)).toBe(access);
  });

  it('puts /metrics behind read with METRICS_AUTH', () => {
    expect(routeAccess('GET', '/metrics', { metricsAuth: true })).toBe('read');
  });
});

describe('credentials', () => {
  it('makes distinct nxt_ tokens of 32 random bytes, stored as SHA-256', () => {
    const a = generateToken();
    const b = generateToken();
    expect(a).toMatch(/^nxt_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(isTokenShaped(a)).toBe(true);
    expect(isTokenShaped(`${a}=`)).toBe(false);
    expect(hashToken(a)).toHaveLength(32);
  });

  it('takes bearer credentials from headers, init payloads and /ws auth messages', () => {
    expect(bearerCredential('Bearer abc')).toBe('abc');
    expect(bearerCredential('bearer  abc ')).toBe('abc');
    expect(bearerCredential('Basic abc')).toBeUndefined();
    expect(bearerCredential(undefined)).toBeUndefined();
    expect(credentialFromInitPayload({ authorization: 'Bearer t1' })).toBe('t1');
    expect(credentialFromInitPayload({ Authorization: 'Bearer t2' })).toBe('t2');
    expect(credentialFromInitPayload({ token: 't3' })).toBe('t3');
    expect(credentialFromInitPayload(undefined)).toBeUndefined();
    expect(credentialFromAuthMessage('{"type":"auth","token":"t4"}')).toBe('t4');
    expect(credentialFromAuthMessage('{"type":"subscribe","token":"t5"}')).toBeUndefined();
    expect(credentialFromAuthMessage('not json')).toBeUndefined();
  });
});

describe('configuration', () => {
  it('parses AUTH and needs JWT_JWKS_URL for jwt', () => {
    expect(loadConfig({}).AUTH).toEqual({ token: false, jwt: false });
    expect(loadConfig({ AUTH: 'token' }).AUTH).toEqual({ token: true, jwt: false });
    expect(loadConfig({ AUTH: 'jwt,token', JWT_JWKS_URL: 'https://idp.example/jwks' }).AUTH).toEqual({
      token: true,
      jwt: true,
    });
    expect(() => loadConfig({ AUTH: 'jwt' })).toThrow(/JWT_JWKS_URL: required/);
    expect(() => loadConfig({ AUTH: 'basic' })).toThrow(/AUTH: "basic" is not one of/);
    expect(() => loadConfig({ AUTH: 'none,token' })).toThrow(/AUTH/);
  });

  it('reads secrets from *_FILE, the variable itself winning', () => {
    const file = join(work, 'db-password');
    writeFileSync(file, 's3cret\n');
    expect(loadConfig({ DB_PASSWORD_FILE: file }).DB_PASSWORD).toBe('s3cret');
    expect(loadConfig({ DB_PASSWORD_FILE: file, DB_PASSWORD: 'direct' }).DB_PASSWORD).toBe('direct');
    expect(() => loadConfig({ REDIS_URL_FILE: join(work, 'missing') })).toThrow(
      /REDIS_URL_FILE: cannot read/,
    );
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'api.example', '128.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('refuses an open bind without auth, allows it with auth or the insecure flag (warning)', () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(String(chunk)), done()) }),
    );
    expect(insecureBind(loadConfig({ HOST: '127.0.0.1' }))).toBe(false);
    expect(() => checkBind(loadConfig({ HOST: '0.0.0.0' }), logger)).toThrow(/--insecure-no-auth/);
    checkBind(loadConfig({ HOST: '0.0.0.0', AUTH: 'token' }), logger)();
    expect(lines).toEqual([]);
    checkBind(loadConfig({ HOST: '0.0.0.0', INSECURE_NO_AUTH: 'true' }), logger)();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('the API serves every interface WITHOUT authentication');
    // The streamer's remote write receiver names itself and what an open port risks.
    checkBind(loadConfig({ HOST: '0.0.0.0', INSECURE_NO_AUTH: 'true' }), logger, {
      service: 'the remote write receiver serves every interface',
      risk: 'anyone who reaches the port can write samples',
    })();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('the remote write receiver serves every interface WITHOUT authentication');
    expect(lines[1]).toContain('anyone who reaches the port can write samples');
  });
});

describe('log redaction', () => {
  it('censors the Authorization header and keeps the root logger redactions', () => {
    const lines: string[] = [];
    const root = pino(
      { redact: ['password'] },
      new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(String(chunk)), done()) }),
    );
    const child = root.child({}, { redact: { paths: CREDENTIAL_LOG_PATHS, censor: '[redacted]' } });
    child.info({ req: { headers: { authorization: 'Bearer nxt_x', cookie: 'c=1' } }, password: 'pw' }, 'm');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      req: { headers: { authorization: '[redacted]', cookie: '[redacted]' } },
      password: '[redacted]',
    });
  });
});

describe('token store and authenticator on PGlite', () => {
  it('creates, looks up by hash only, lists, revokes, and forgets revoked tokens', async () => {
    const store = await createPgliteSampleStore({ memory: true });
    try {
      await store.migrate();
      const tokens = tokenStoreOf(store)!;
      const { token, record } = await tokens.create('grafana', ['read']);
      expect(record).toMatchObject({ name: 'grafana', scopes: ['read'] });
      expect(record.revokedAt).toBeUndefined();
      await expect(tokens.create('grafana', ['write'])).rejects.toThrow(
        /a valid token named "grafana" exists/,
      );
      await expect(tokens.create('bad name', ['read'])).rejects.toThrow(/token name/);
      const { rows } = await store.withSql('t', (db) =>
        db.query<{ token_hash: Buffer }>('SELECT token_hash FROM api_tokens'),
      );
      expect(rows).toHaveLength(1);
      expect(Buffer.from(rows[0]!.token_hash).equals(hashToken(token))).toBe(true);

      const auth = new Authenticator({ tokens, cacheMs: 60_000 });
      const outcome = await auth.authenticate(token);
      expect(outcome).toEqual({
        ok: true,
        principal: { kind: 'token', subject: 'grafana', scopes: ['read'] },
      });
      expect(await auth.authenticate(undefined)).toEqual({ ok: false, failure: 'missing' });
      expect(await auth.authenticate(generateToken())).toEqual({ ok: false, failure: 'invalid' });

      expect((await tokens.revoke(record.id))?.revokedAt).toBeDefined();
      expect(await tokens.revoke('grafana')).toBeUndefined();
      expect(await tokens.lookup(token)).toBeUndefined();
      // Cached for a minute here, until forgotten.
      expect((await auth.authenticate(token)).ok).toBe(true);
      auth.forget();
      expect((await auth.authenticate(token)).ok).toBe(false);
      if (outcome.ok) expect(await auth.recheck(outcome.principal)).toBe(false);

      expect(await tokens.list()).toEqual([]);
      expect((await tokens.list({ includeRevoked: true })).map((t) => t.name)).toEqual(['grafana']);
      // The name is free again once revoked.
      expect((await tokens.create('grafana', ['read', 'admin'])).record.scopes).toEqual(['read', 'admin']);
    } finally {
      await store.close();
    }
  });
});
