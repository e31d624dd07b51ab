/**
 * The /ws JSON protocol (docs/ws-protocol.md) against the embedded runtime with the bundled sample:
 * welcome, ping/pong, subscribe/unsubscribe with filters, events from the collector's writes, errors
 * that keep the connection, close codes for what breaks the protocol, the message size limit, the
 * Origin check, the connection limit, heartbeats that drop dead clients, and the protocol switches
 * (ENABLE_WEBSOCKET, ENABLE_GRAPHQL, ENABLE_CORS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { readSampleRows } from '../support/sample-csv.js';
import { JsonSocket, startExtraApp, startSampleServer, waitUntil, type SampleServer } from './harness.js';

let server: SampleServer;
let strict: Awaited<ReturnType<typeof startExtraApp>>;

beforeAll(async () => {
  server = await startSampleServer();
  strict = await startExtraApp(server.runtime, {
    WS_MAX_PAYLOAD: 1024,
    WS_HEARTBEAT: 200,
    WS_MAX_CONNECTIONS: 3,
    WS_MAX_SUBSCRIPTIONS: 2,
    CORS_ORIGINS: 'https://dash.example.com',
  });
});

afterAll(async () => {
  await strict?.close();
  await server?.close();
});

const HOST = 'mtv5-dgx1-hgpu-031';

async function connect(
  path = '/ws?subscribe=none',
  base = server.wsBase,
  headers: Record<string, string> = {},
) {
  const s = new JsonSocket(`${base}${path}`, undefined, { headers });
  await s.opened;
  await s.next((m) => m.type === 'welcome', 'welcome');
  return s;
}

describe('/ws protocol', () => {
  it('greets, answers ping with pong (echoing id and payload), and GET without upgrade is 426', async () => {
    const s = await connect();
    const welcome = s.ofType('welcome')[0]!;
    expect(welcome).toMatchObject({
      protocol: 'nexus-telemetry.ws.v1',
      maxPayload: 65536,
      maxSubscriptions: 20,
    });
    expect(welcome.cursor).toMatch(/^\d+$/);
    s.send({ type: 'ping', id: 7, payload: { hello: 'world' } });
    const pong = await s.next((m) => m.type === 'pong', 'pong');
    expect(pong).toMatchObject({ id: 7, payload: { hello: 'world' } });
    s.close();

    const res = await fetch(`${server.base}/ws`);
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
  });

  it('subscribes with filters, pushes the matching events with cursors, and unsubscribes', async () => {
    const s = await connect();
    const uuid = readSampleRows().find((r) => r.hostname === HOST && r.gpuId === '3')!.uuid;
    s.send({
      type: 'subscribe',
      id: 'host',
      filter: { hostId: HOST, metrics: ['gpuUtilization', 'powerDraw'] },
    });
    s.send({ type: 'subscribe', id: 'gpu', filter: { gpuId: uuid } });
    s.send({
      type: 'subscribe',
      id: 'idx',
      filter: { hostId: HOST, gpuId: '3', eventTypes: ['GPU_UPDATE'] },
    });
    await waitUntil(() => s.ofType('subscribed').length === 3, 'three acks');
    expect(s.ofType('subscribed', 'host')[0]!.cursor).toMatch(/^\d+$/);
    await server.replay();
    await waitUntil(
      () => s.ofType('event', 'idx').length > 0 && s.ofType('event', 'host').length >= 8,
      'events',
    );
    await new Promise((r) => setTimeout(r, 100));

    const host = s.ofType('event', 'host');
    for (const m of host) {
      const event = m.event as Record<string, unknown>;
      expect(event.hostId).toBe(HOST);
      expect(Object.keys(event.data as object).sort()).toEqual(['gpuUtilization', 'powerDraw']);
      expect(m.cursor).toBe(event.cursor);
    }
    const cursors = host.map((m) => Number(m.cursor));
    expect([...cursors].sort((a, b) => a - b)).toEqual(cursors);
    expect(new Set(cursors).size).toBe(cursors.length);

    const gpu = s.ofType('event', 'gpu').map((m) => m.event as Record<string, unknown>);
    expect(gpu.length).toBeGreaterThan(0);
    expect(
      gpu.every((e) => e.gpuId === uuid && e.gpuIndex === '3' && e.deviceName === 'NVIDIA H100 80GB HBM3'),
    ).toBe(true);
    const idx = s.ofType('event', 'idx').map((m) => Number(m.cursor));
    expect(idx).toEqual(s.ofType('event', 'gpu').map((m) => Number(m.cursor)));

    // The values are the CSV's.
    const last = gpu.at(-1)!;
    const util = readSampleRows().find((r) => r.uuid === uuid && r.metric === 'DCGM_FI_DEV_GPU_UTIL')!.value;
    expect((last.data as Record<string, number>).gpuUtilization).toBe(util);

    s.send({ type: 'unsubscribe', id: 'host' });
    await s.next((m) => m.type === 'unsubscribed' && m.id === 'host', 'unsubscribed');
    const before = s.ofType('event', 'host').length;
    await server.replay();
    await waitUntil(() => s.ofType('event', 'gpu').length > gpu.length, 'more events on gpu');
    expect(s.ofType('event', 'host').length).toBe(before);
    s.close();
  });

  it('takes a first subscription from the URL (plain /ws: everything)', async () => {
    const s = await connect(`/ws?hostId=${HOST}&metrics=temperature&snapshot=true`);
    await waitUntil(() => s.ofType('event', 'default').length === 8, 'a snapshot of the host');
    const events = s.ofType('event', 'default').map((m) => m.event as Record<string, unknown>);
    expect(events.every((e) => e.eventType === 'SNAPSHOT' && e.hostId === HOST)).toBe(true);
    expect(Object.keys(events[0]!.data as object)).toEqual(['temperature']);
    s.close();

    const all = await connect('/ws');
    await all.next((m) => m.type === 'subscribed' && m.id === 'default', 'the default subscription');
    all.close();
  });

  it('answers bad messages with errors and keeps the connection', async () => {
    const s = await connect();
    const cases: [unknown, string][] = [
      [{ type: 'subscribe', id: 'a', filter: { gpuId: '0' } }, 'AMBIGUOUS_GPU_ID'],
      [{ type: 'subscribe', id: 'b', filter: { metrics: ['warpSpeed'] } }, 'BAD_REQUEST'],
      [{ type: 'subscribe', id: 'c', filter: { color: 'red' } }, 'BAD_REQUEST'],
      [{ type: 'subscribe', id: 'd', after: 'yesterday' }, 'BAD_REQUEST'],
      [{ type: 'subscribe' }, 'BAD_REQUEST'],
      [{ type: 'unsubscribe', id: 'nope' }, 'NOT_FOUND'],
      [{ type: 'dance' }, 'BAD_REQUEST'],
      [[1, 2], 'BAD_REQUEST'],
    ];
    for (const [message] of cases) s.send(message);
    await waitUntil(() => s.ofType('error').length === cases.length, 'an error per message');
    expect(s.ofType('error').map((m) => m.code)).toEqual(cases.map(([, code]) => code));
    s.send({ type: 'subscribe', id: 'dup' });
    s.send({ type: 'subscribe', id: 'dup' });
    await s.next((m) => m.type === 'error' && m.code === 'DUPLICATE_ID', 'duplicate id');
    s.send({ type: 'ping' });
    await s.next((m) => m.type === 'pong', 'still alive');
    s.close();
  });

  it('closes 4400 on text that is not JSON or on binary, and 1009 over WS_MAX_PAYLOAD', async () => {
    const a = await connect();
    a.ws.send('{oops');
    expect((await a.closed).code).toBe(4400);
    const b = await connect();
    b.ws.send(Buffer.from([1, 2, 3]));
    expect((await b.closed).code).toBe(4400);
    const c = await connect('/ws?subscribe=none', strict.wsBase);
    c.send({ type: 'ping', payload: 'x'.repeat(2000) });
    expect((await c.closed).code).toBe(1009);
  });

  it('limits subscriptions per connection and connections per server', async () => {
    const s = await connect('/ws?subscribe=none', strict.wsBase);
    for (const id of ['1', '2', '3']) s.send({ type: 'subscribe', id });
    const refused = await s.next((m) => m.type === 'error', 'a refusal');
    expect(refused).toMatchObject({ id: '3', code: 'TOO_MANY_SUBSCRIPTIONS' });
    const more = [
      await connect('/ws?subscribe=none', strict.wsBase),
      await connect('/ws?subscribe=none', strict.wsBase),
    ];
    const over = new JsonSocket(`${strict.wsBase}/ws`);
    await over.closed;
    expect(over.refusedWith).toBe(503);
    for (const x of [s, ...more]) x.close();
  });

  it('checks the Origin against CORS_ORIGINS: foreign 403, listed and same-origin allowed', async () => {
    const foreign = new JsonSocket(`${strict.wsBase}/ws`, undefined, {
      headers: { Origin: 'http://localhost:3000' },
    });
    await foreign.closed;
    expect(foreign.refusedWith).toBe(403);
    const listed = await connect('/ws?subscribe=none', strict.wsBase, { Origin: 'https://dash.example.com' });
    listed.close();
    const same = await connect('/ws?subscribe=none', strict.wsBase, { Origin: strict.base });
    same.close();
    const unknownPath = new JsonSocket(`${server.wsBase}/nowhere`);
    await unknownPath.closed;
    expect(unknownPath.refusedWith).toBe(404);
  });

  it('terminates a client that stops answering heartbeats', async () => {
    const dead = new WebSocket(`${strict.wsBase}/ws?subscribe=none`, { autoPong: false });
    const closed = new Promise<number>((resolve) => dead.once('close', (code) => resolve(code)));
    dead.on('error', () => undefined);
    const heartbeats: unknown[] = [];
    dead.on('message', (d) => {
      const m = JSON.parse(String(d)) as { type: string };
      if (m.type === 'heartbeat') heartbeats.push(m);
    });
    const started = Date.now();
    // No pong and no message for two heartbeat intervals (200 ms each): the server cuts the TCP connection.
    expect(await closed).toBe(1006);
    expect(heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(10_000);

    // A client that answers pings stays. On a server of its own with a 1 s heartbeat: client and
    // server share this event loop, and one stall of over 200 ms would look like a missed pong.
    const patient = await startExtraApp(server.runtime, { WS_HEARTBEAT: 1_000 });
    try {
      const alive = await connect('/ws?subscribe=none', patient.wsBase);
      await new Promise((r) => setTimeout(r, 3_500));
      expect(alive.ws.readyState).toBe(WebSocket.OPEN);
      alive.close();
    } finally {
      await patient.close();
    }
  });
});

describe('protocol switches', () => {
  it('with ENABLE_GRAPHQL and ENABLE_WEBSOCKET off the server is REST-only', async () => {
    const rest = await startExtraApp(server.runtime, { ENABLE_GRAPHQL: false, ENABLE_WEBSOCKET: false });
    try {
      expect(rest.app.realtime).toBeUndefined();
      expect((await fetch(`${rest.base}/graphql`, { method: 'POST', body: '{}' })).status).toBe(404);
      expect((await fetch(`${rest.base}/ws`)).status).toBe(404);
      const ws = new JsonSocket(`${rest.wsBase}/ws`);
      const closed = await ws.closed;
      expect(closed.code === -1 || closed.code === 1006).toBe(true);
      expect((await fetch(`${rest.base}/api/v1/clusters/my-cluster`)).status).toBe(200);
    } finally {
      await rest.close();
    }
  });

  it('switches each protocol alone, and CORS off sends no CORS headers', async () => {
    const gqlOnly = await startExtraApp(server.runtime, { ENABLE_WEBSOCKET: false, ENABLE_CORS: false });
    const wsOnly = await startExtraApp(server.runtime, { ENABLE_GRAPHQL: false });
    try {
      expect((await fetch(`${gqlOnly.base}/ws`)).status).toBe(404);
      const res = await fetch(`${gqlOnly.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://localhost:3000' },
        body: JSON.stringify({ query: '{ clusters { id } }' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect((await fetch(`${wsOnly.base}/graphql`)).status).toBe(404);
      const s = await connect('/ws?subscribe=none', wsOnly.wsBase);
      s.close();
    } finally {
      await gqlOnly.close();
      await wsOnly.close();
    }
  });
});
