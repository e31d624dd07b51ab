/**
 * Authentication and scopes on every interface of a running embedded server (AUTH=token,jwt):
 * REST, GraphQL over HTTP, graphql-ws, /ws, remote write, /metrics. Tokens come from the real token
 * store (PGlite in memory); JWTs are signed by keys made here and served as a JWKS on loopback.
 * Every log line and every response body is scanned for the token strings at the end.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';

/** Every log line the server wrote. */
const logLines: string[] = [];
/** Every response body the tests received (except token-creation responses). */
const bodies: string[] = [];
/** Every credential used. */
const secrets: string[] = [];

let runtime: EmbeddedRuntime;
let base: string;
let jwks: Server;
let signingKey: CryptoKey;
let otherKey: CryptoKey;
let issuerUrl: string;
const tokens: Record<'read' | 'write' | 'admin', string> = { read: '', write: '', admin: '' };

async function serveJwks(keys: JWK[]): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/jwks.json') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function jwt(options: {
  scope?: string;
  key?: CryptoKey;
  expiresIn?: string | number;
  issuer?: string;
}) {
  let builder = new SignJWT({ scope: options.scope ?? 'read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'test-key' })
    .setSubject('grafana-user')
    .setIssuer(options.issuer ?? issuerUrl)
    .setAudience('nexus-telemetry')
    .setIssuedAt();
  builder = builder.setExpirationTime(options.expiresIn ?? '10m');
  const text = await builder.sign(options.key ?? signingKey);
  secrets.push(text);
  return text;
}

async function call(
  path: string,
  init: { token?: string; method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body: init.body });
  const body = await response.text();
  bodies.push(body);
  return { status: response.status, body, headers: response.headers };
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  jwks = await serveJwks([
    { ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'ES256', use: 'sig' },
  ]);
  const address = jwks.address();
  issuerUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      HOST: '127.0.0.1',
      PORT: 0,
      AUTH: 'token,jwt',
      JWT_JWKS_URL: `${issuerUrl}/jwks.json`,
      JWT_ISSUER: issuerUrl,
      JWT_AUDIENCE: 'nexus-telemetry',
      WS_HEARTBEAT: '30s',
    },
  );
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  runtime = await startEmbedded({ config, logger: pino({ level: 'debug' }, sink) });
  base = runtime.address!;
  const store = tokenStoreOf(runtime.store)!;
  for (const scope of ['read', 'write', 'admin'] as const) {
    tokens[scope] = (await store.create(`test-${scope}`, [scope])).token;
    secrets.push(tokens[scope]);
  }
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  await new Promise((resolve) => jwks?.close(resolve));
});

/** A WebSocket that records its messages and how it closed. */
function openSocket(path: string, options: { token?: string; protocol?: string } = {}) {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}${path}`, options.protocol ?? [], {
    headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
  });
  const messages: Record<string, unknown>[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  const unexpected = new Promise<number>((resolve) =>
    socket.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (d: Buffer) => (text += d.toString()));
      response.on('end', () => {
        bodies.push(text);
        resolve(response.statusCode ?? 0);
      });
    }),
  );
  socket.on('message', (data) => {
    const text = String(data);
    bodies.push(text);
    messages.push(JSON.parse(text) as Record<string, unknown>);
  });
  return { socket, messages, opened, closed, unexpected };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('REST', () => {
  it('keeps /health, /ready, /openapi.json and /metrics public', async () => {
    for (const path of ['/health', '/ready', '/openapi.json', '/metrics'])
      expect((await call(path)).status, path).toBe(200);
  });

  it('answers 401 with a bearer challenge without a token, or with a wrong one', async () => {
    const missing = await call('/api/v1/clusters');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="nexus-telemetry"');
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    const wrong = `nxt_${'A'.repeat(43)}`;
    secrets.push(wrong);
    for (const token of [wrong, 'not-a-token', `${tokens.read}x`]) {
      const refused = await call('/api/v1/clusters', { token });
      expect(refused.status, token.slice(0, 6)).toBe(401);
      expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // Unknown paths too: nothing to probe without a token.
    expect((await call('/api/v1/nope')).status).toBe(401);
  });

  it('serves each route to its scope and answers 403 to the others', async () => {
    const expectations: [string, string, 'read' | 'write' | 'admin', number][] = [
      ['GET', '/api/v1/clusters', 'read', 200],
      ['GET', '/api/v1/clusters', 'write', 403],
      ['GET', '/api/v1/clusters', 'admin', 200],
      ['GET', '/api/v1/gpus', 'read', 200],
      ['GET', '/api/v1/services', 'read', 403],
      ['GET', '/api/v1/services', 'admin', 200],
      ['GET', '/api/v1/dead-letters', 'read', 403],
      ['GET', '/api/v1/dead-letters', 'admin', 200],
      ['GET', '/api/v1/tokens', 'read', 403],
      ['GET', '/api/v1/tokens', 'admin', 200],
      ['POST', '/api/v1/write', 'read', 403],
    ];
    for (const [method, path, scope, status] of expectations) {
      const response = await call(path, { method, token: tokens[scope] });
      expect(response.status, `${method} ${path} with ${scope}`).toBe(status);
      if (status === 403) {
        expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
        expect(response.headers.get('www-authenticate')).toContain('insufficient_scope');
      }
    }
    // A write token passes the auth hook on remote write: the empty body is the route's own 400.
    const write = await call('/api/v1/write', {
      method: 'POST',
      token: tokens.write,
      headers: { 'content-type': 'application/x-protobuf' },
      body: '',
    });
    expect([400, 415]).toContain(write.status);
    const listing = JSON.parse((await call('/api/v1/tokens', { token: tokens.admin })).body) as {
      data: { name: string; scopes: string[] }[];
    };
    expect(listing.data.map((t) => t.name).sort()).toEqual(['test-admin', 'test-read', 'test-write']);
  });

  it('requires read for GraphQL over HTTP', async () => {
    const query = JSON.stringify({ query: '{ clusters { id } }' });
    const headers = { 'content-type': 'application/json' };
    expect((await call('/graphql', { method: 'POST', body: query, headers })).status).toBe(401);
    expect(
      (await call('/graphql', { method: 'POST', body: query, headers, token: tokens.write })).status,
    ).toBe(403);
    const ok = await call('/graphql', { method: 'POST', body: query, headers, token: tokens.read });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toHaveProperty('data.clusters');
  });

  it('refuses a token at once after it is revoked through the admin endpoint', async () => {
    const created = await fetch(`${base}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'short-lived', scopes: ['read'] }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const { token, id } = (await created.json()) as { token: string; id: string };
    secrets.push(token);
    expect(token).toMatch(/^nxt_[A-Za-z0-9_-]{43}$/);
    expect((await call('/api/v1/clusters', { token })).status).toBe(200);
    const revoked = await call(`/api/v1/tokens/${id}`, { method: 'DELETE', token: tokens.admin });
    expect(revoked.status).toBe(200);
    expect(JSON.parse(revoked.body)).toMatchObject({ id, name: 'short-lived' });
    expect((await call('/api/v1/clusters', { token })).status).toBe(401);
    expect((await call(`/api/v1/tokens/${id}`, { method: 'DELETE', token: tokens.admin })).status).toBe(404);
  });
});

describe('JWT', () => {
  it('accepts a JWT signed by the JWKS key, with scopes from the claim', async () => {
    expect((await call('/api/v1/clusters', { token: await jwt({ scope: 'read' }) })).status).toBe(200);
    expect((await call('/api/v1/services', { token: await jwt({ scope: 'read' }) })).status).toBe(403);
    expect((await call('/api/v1/services', { token: await jwt({ scope: 'read admin' }) })).status).toBe(200);
  });

  it('refuses an expired, wrongly signed or foreign-issuer JWT', async () => {
    const expired = await jwt({ expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const forged = await jwt({ key: otherKey });
    const foreign = await jwt({ issuer: 'https://elsewhere.example' });
    for (const [name, token] of Object.entries({ expired, forged, foreign }))
      expect((await call('/api/v1/clusters', { token })).status, name).toBe(401);
  });
});

describe('OpenAPI', () => {
  it('declares the bearer scheme and each route rule', async () => {
    const doc = JSON.parse((await call('/openapi.json')).body) as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/v1/clusters']!.get!.security).toEqual([{ bearerAuth: ['read'] }]);
    expect(doc.paths['/api/v1/services']!.get!.security).toEqual([{ bearerAuth: ['admin'] }]);
    expect(doc.paths['/api/v1/write']!.post!.security).toEqual([{ bearerAuth: ['write'] }]);
    expect(doc.paths['/api/v1/tokens']!.post!.security).toEqual([{ bearerAuth: ['admin'] }]);
    expect(doc.paths['/health']!.get!.security).toEqual([]);
  });
});

describe('/ws', () => {
  it('refuses a handshake with a bad header (401) or without the read scope (403)', async () => {
    expect(await openSocket('/ws', { token: `nxt_${'B'.repeat(43)}` }).unexpected).toBe(401);
    expect(await openSocket('/ws', { token: tokens.write }).unexpected).toBe(403);
  });

  it('accepts a header token, or an auth first message; closes 4401/4403 otherwise', async () => {
    const header = openSocket('/ws?subscribe=none', { token: tokens.read });
    await waitFor(() => header.messages.some((m) => m.type === 'welcome'), 'welcome (header)');
    header.socket.close();

    const inBand = openSocket('/ws?subscribe=none');
    await inBand.opened;
    inBand.socket.send(JSON.stringify({ type: 'auth', token: tokens.read }));
    await waitFor(() => inBand.messages.some((m) => m.type === 'welcome'), 'welcome (auth message)');
    inBand.socket.close();

    const none = openSocket('/ws?subscribe=none');
    await none.opened;
    none.socket.send(JSON.stringify({ type: 'subscribe', id: 'x' }));
    expect((await none.closed).code).toBe(4401);
    expect(none.messages).toEqual([]);

    const writer = openSocket('/ws?subscribe=none');
    await writer.opened;
    writer.socket.send(JSON.stringify({ type: 'auth', token: tokens.write }));
    expect((await writer.closed).code).toBe(4403);
  });
});

describe('graphql-ws', () => {
  const init = (socket: WebSocket, payload?: Record<string, unknown>) =>
    socket.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) }));

  it('takes the token from connection_init; closes 4401 without one and 4403 without read', async () => {
    const ok = openSocket('/graphql', { protocol: 'graphql-transport-ws' });
    await ok.opened;
    init(ok.socket, { authorization: `Bearer ${tokens.read}` });
    await waitFor(() => ok.messages.some((m) => m.type === 'connection_ack'), 'connection_ack');
    ok.socket.close();

    const missing = openSocket('/graphql', { protocol: 'graphql-transport-ws' });
    await missing.opened;
    init(missing.socket);
    expect((await missing.closed).code).toBe(4401);

    const writer = openSocket('/graphql', { protocol: 'graphql-transport-ws' });
    await writer.opened;
    init(writer.socket, { token: tokens.write });
    expect((await writer.closed).code).toBe(4403);
  });
});

describe('revocation of open WebSockets', () => {
  it('closes /ws and graphql-ws connections with 4401 once their token is revoked', async () => {
    const created = await fetch(`${base}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'dashboard', scopes: ['read'] }),
    });
    const { token, id } = (await created.json()) as { token: string; id: string };
    secrets.push(token);
    const stream = openSocket('/ws?subscribe=none');
    await stream.opened;
    stream.socket.send(JSON.stringify({ type: 'auth', token }));
    await waitFor(() => stream.messages.some((m) => m.type === 'welcome'), 'welcome');
    const gql = openSocket('/graphql', { protocol: 'graphql-transport-ws', token });
    await gql.opened;
    gql.socket.send(JSON.stringify({ type: 'connection_init' }));
    await waitFor(() => gql.messages.some((m) => m.type === 'connection_ack'), 'connection_ack');

    const started = Date.now();
    expect((await call(`/api/v1/tokens/${id}`, { method: 'DELETE', token: tokens.admin })).status).toBe(200);
    const [a, b] = await Promise.all([stream.closed, gql.closed]);
    expect(a.code).toBe(4401);
    expect(b.code).toBe(4401);
    // Re-checked every second; generous on a loaded machine.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('secrecy', () => {
  it('never writes a credential to a log line or a response body', () => {
    expect(secrets.length).toBeGreaterThan(8);
    expect(logLines.length).toBeGreaterThan(0);
    const logs = logLines.join('\n');
    const responses = bodies.join('\n');
    for (const secret of secrets) {
      expect(logs.includes(secret), `log holds ${secret.slice(0, 8)}...`).toBe(false);
      expect(responses.includes(secret), `a response holds ${secret.slice(0, 8)}...`).toBe(false);
    }
  });
});
