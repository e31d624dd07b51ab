/**
 * Issue 16 on /ws and the WebSocket handshake: a message nested 5,000 levels deep is refused with
 * 4400 instead of overflowing the stack in the pong's JSON.stringify (which killed the process), a
 * handler that throws closes only its connection (1011), close reasons never outgrow a close frame,
 * and the Origin check refuses DNS rebinding (an unknown Host equal to the Origin) while loopback,
 * IP-address and listed origins and clients without an Origin still connect, on /ws and /graphql.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKnownHost, originAllowed } from '../../src/api/cors.js';
import { closeReason, CloseCode } from '../../src/api/ws/close.js';
import { jsonDepthExceeds, MAX_MESSAGE_DEPTH } from '../../src/api/ws/protocol.js';
import { createStreamServer, type StreamServer } from '../../src/api/ws/server.js';
import { installUpgradeRouter } from '../../src/api/ws/upgrade.js';
import type { EventHub } from '../../src/events/hub.js';
import { createLogger } from '../../src/util/logger.js';
import { deepJson } from '../support/hostile-clients.js';
import { JsonSocket, startExtraApp, startSampleServer, type SampleServer } from './harness.js';

let server: SampleServer;
let listed: Awaited<ReturnType<typeof startExtraApp>>;

beforeAll(async () => {
  server = await startSampleServer({}, { ingest: false });
  listed = await startExtraApp(server.runtime, { CORS_ORIGINS: 'https://dash.example.com' });
});

afterAll(async () => {
  await listed?.close();
  await server?.close();
});

async function connect(base: string, path = '/ws?subscribe=none', headers: Record<string, string> = {}) {
  const s = new JsonSocket(`${base}${path}`, undefined, { headers });
  await s.opened;
  await s.next((m) => m.type === 'welcome', 'welcome');
  return s;
}

/** How the socket closed, or code -2 when it is still open after `ms`. */
function closedWithin(s: JsonSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  return Promise.race([
    s.closed,
    new Promise<{ code: number; reason: string }>((r) => setTimeout(() => r({ code: -2, reason: '' }), ms)),
  ]);
}

/** A fresh connection answers a ping: the server process is alive and serving. */
async function stillServing(base: string): Promise<void> {
  const s = await connect(base);
  s.send({ type: 'ping', id: 'alive' });
  expect(await s.next((m) => m.type === 'pong', 'pong')).toMatchObject({ id: 'alive' });
  s.close();
}

describe('/ws message depth', () => {
  it('closes 4400 on a ping 5,000 levels deep and keeps serving', async () => {
    const s = await connect(server.wsBase);
    const text = `{"type":"ping","id":1,"payload":${deepJson(5000)}}`;
    expect(text.length).toBeGreaterThan(10_000);
    s.ws.send(text);
    const closed = await closedWithin(s);
    expect(closed.code).toBe(CloseCode.BadMessage);
    expect(closed.reason).toBe(`message nested more than ${MAX_MESSAGE_DEPTH} levels deep`);
    expect(s.ofType('pong')).toHaveLength(0);
    await stillServing(server.wsBase);
    expect((await fetch(`${server.base}/health`)).status).toBe(200);
  });

  it('echoes a payload at the depth limit and refuses one level more', async () => {
    const s = await connect(server.wsBase);
    // The message object is level 1: a payload of 31 levels makes 32.
    s.ws.send(`{"type":"ping","id":"edge","payload":${deepJson(MAX_MESSAGE_DEPTH - 1)}}`);
    const pong = await s.next((m) => m.type === 'pong', 'pong');
    expect(JSON.stringify(pong.payload)).toBe(deepJson(MAX_MESSAGE_DEPTH - 1));
    s.ws.send(`{"type":"ping","payload":${deepJson(MAX_MESSAGE_DEPTH)}}`);
    expect((await closedWithin(s)).code).toBe(4400);
    expect(s.ofType('pong')).toHaveLength(1);
  });

  it('does not count brackets inside strings', () => {
    expect(jsonDepthExceeds(`{"a":"${'['.repeat(100)}\\"{{{"}`, 2)).toBe(false);
    expect(jsonDepthExceeds(`{"a":[[1]]}`, 2)).toBe(true);
    expect(jsonDepthExceeds(`{"a":[[1]]}`, 3)).toBe(false);
    expect(jsonDepthExceeds(deepJson(1_000_000), 32)).toBe(true);
  });
});

describe('/ws failures stay on their connection', () => {
  let http: Server;
  let streams: StreamServer;
  let base: string;

  beforeAll(async () => {
    // A hub whose subscribe throws synchronously, as an unexpected bug would.
    const hub = {
      head: 7,
      subscribe: () => {
        throw new TypeError('hub exploded');
      },
    } as unknown as EventHub;
    const logger = createLogger('silent');
    streams = createStreamServer({
      hub,
      heartbeatMs: 60_000,
      maxPayload: 4096,
      maxBuffered: 1 << 20,
      maxSubscriptions: 4,
      logger,
    });
    http = createServer((_req, res) => res.end('ok'));
    installUpgradeRouter(http, {
      routes: new Map([['/ws', { wss: streams.wss, maxConnections: 10 }]]),
      allowOrigin: () => true,
      logger,
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    base = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await streams?.close();
    await new Promise((resolve) => http?.close(resolve));
  });

  it('closes 1011 when handling a message throws, and other connections carry on', async () => {
    const bystander = await connect(base);
    const victim = await connect(base);
    victim.send({ type: 'subscribe', id: 'x' });
    const closed = await closedWithin(victim);
    expect(closed).toEqual({ code: 1011, reason: 'internal server error' });
    bystander.send({ type: 'ping', id: 2 });
    expect(await bystander.next((m) => m.type === 'pong', 'pong')).toMatchObject({ id: 2, cursor: '7' });
    expect(streams.connections.size).toBe(1);
    bystander.close();
  });

  it('closes 1011 when the URL subscription throws while the connection opens', async () => {
    const s = new JsonSocket(`${base}/ws`);
    expect((await closedWithin(s)).code).toBe(1011);
    await stillServing(base);
  });
});

describe('close reasons', () => {
  it('are cut to 123 bytes of UTF-8', () => {
    expect(closeReason('short')).toBe('short');
    const ascii = closeReason('x'.repeat(500));
    expect(ascii).toBe('x'.repeat(123));
    const wide = closeReason('\u{1F600}'.repeat(100));
    expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(123);
    expect(wide.length).toBeGreaterThan(50);
  });

  it('a bad cursor of wide characters in the URL closes 4400 (not a cut TCP connection)', async () => {
    const s = new JsonSocket(
      `${server.wsBase}/ws?after=${encodeURIComponent('\u{1F600}'.repeat(40))}x${'y'.repeat(40)}`,
    );
    const closed = await closedWithin(s);
    expect(closed.code).toBe(4400);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(s.ofType('error')[0]).toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('Origin check against DNS rebinding', () => {
  it('allows same-origin only on hosts the server is known by', () => {
    const list = ['https://dash.example.com', 'http://localhost:3000'];
    // DNS rebinding: Origin and Host name the attacker's domain.
    expect(originAllowed('http://evil.example:8080', list, 'evil.example:8080')).toBe(false);
    expect(originAllowed('https://evil.example', list, 'evil.example')).toBe(false);
    expect(originAllowed('http://localhost:8080', list, 'localhost:8080')).toBe(true);
    expect(originAllowed('http://127.0.0.1:8080', list, '127.0.0.1:8080')).toBe(true);
    expect(originAllowed('http://[::1]:8080', list, '[::1]:8080')).toBe(true);
    expect(originAllowed('http://10.1.2.3:8080', list, '10.1.2.3:8080')).toBe(true);
    // Host of a listed origin, other scheme/port: known name.
    expect(originAllowed('http://dash.example.com:8080', list, 'dash.example.com:8080')).toBe(true);
    // The configured listen name (when it is a name), but never a wildcard.
    expect(originAllowed('http://gpu-box.lan:8080', list, 'gpu-box.lan:8080', ['gpu-box.lan'])).toBe(true);
    expect(originAllowed('http://gpu-box.lan:8080', list, 'gpu-box.lan:8080', ['0.0.0.0'])).toBe(false);
    // Origin and Host differ: only the allowlist decides.
    expect(originAllowed('http://localhost:3000', list, 'evil.example')).toBe(true);
    expect(originAllowed('http://localhost:4000', list, 'localhost:8080')).toBe(false);
    expect(originAllowed(undefined, list, 'evil.example')).toBe(true);
    expect(originAllowed('http://evil.example', ['*'], 'evil.example')).toBe(true);
    expect(isKnownHost('127.0.0.1.evil.example')).toBe(false);
    expect(isKnownHost('localhost.')).toBe(false);
    expect(isKnownHost('')).toBe(false);
  });

  const rebinding = { Host: 'evil.example:8080', Origin: 'http://evil.example:8080' };

  for (const [path, protocol] of [
    ['/ws?subscribe=none', undefined],
    ['/graphql', 'graphql-transport-ws'],
  ] as const) {
    it(`refuses a rebound Host on ${path.split('?')[0]} (403), allows loopback, listed and no Origin`, async () => {
      const port = new URL(listed.base).port;
      const open = async (headers: Record<string, string>) => {
        const s = new JsonSocket(`${listed.wsBase}${path}`, protocol, { headers });
        const outcome = await Promise.race([
          s.opened.then(
            () => 'open',
            () => 'failed',
          ),
          s.closed.then(() => 'closed'),
        ]);
        s.close();
        return outcome === 'open' ? 'open' : s.refusedWith;
      };
      expect(await open(rebinding)).toBe(403);
      expect(await open({ Host: `localhost:${port}`, Origin: `http://localhost:${port}` })).toBe('open');
      expect(await open({ Origin: `http://127.0.0.1:${port}` })).toBe('open');
      expect(await open({ Host: 'dash.example.com', Origin: 'https://dash.example.com' })).toBe('open');
      expect(await open({ Host: 'evil.example:8080' })).toBe('open');
      expect(await open({ Host: 'evil.example:8080', Origin: 'https://dash.example.com' })).toBe('open');
    });
  }
});
