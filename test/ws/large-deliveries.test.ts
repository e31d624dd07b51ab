// Deliveries bigger than WS_MAX_BUFFERED (a snapshot or a hierarchy round of a large fleet) reach
// a client that reads, over /ws and GraphQL, instead of cutting it off: a turn's own sends are not
// counted against a client in that turn (src/api/ws/coalesce-sends.ts), a GraphQL subscription
// queues one delivery whole (src/events/iterator.ts) and its sends wait for the network when the
// client has bytes left unread (src/api/graphql/ws.ts). Real HTTP servers, real ws clients.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { coalesceSends, unsentBytes } from '../../src/api/ws/coalesce-sends.js';
import { startSampleServer, waitUntil, type SampleServer } from './harness.js';

/** GPUs in the bundled sample: a snapshot is one event per GPU. */
const SAMPLE_GPUS = 247;

const servers: Server[] = [];
const sockets: WebSocket[] = [];
let sample: SampleServer | undefined;
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await sample?.close();
  sample = undefined;
});

describe('unsentBytes', () => {
  it('leaves out every byte sent in the current turn, flushed or not, and counts them in the next', async () => {
    const FRAME = 64 * 1024;
    const FRAMES = 256; // 16 MiB: more than loopback's socket buffers take from a client that does not read
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const server = createServer();
    servers.push(server);
    const measured = new Promise<{ inTurn: number; bufferedInTurn: number; nextTurn: number }>((resolve) => {
      server.on('upgrade', (request, socket: Duplex, head) => {
        wss.handleUpgrade(request, socket, head, (ws) => {
          coalesceSends(ws, socket);
          ws.once('message', () => {
            const frame = Buffer.alloc(FRAME, 0x61);
            for (let i = 0; i < FRAMES; i++) ws.send(frame);
            const inTurn = unsentBytes(ws);
            const bufferedInTurn = ws.bufferedAmount;
            setTimeout(() => resolve({ inTurn, bufferedInTurn, nextTurn: unsentBytes(ws) }), 50);
          });
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    sockets.push(client);
    let received = 0;
    client.on('message', (data: Buffer) => (received += data.length));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    client.send('go');
    client.pause();
    const { inTurn, bufferedInTurn, nextTurn } = await measured;
    expect(bufferedInTurn).toBeGreaterThan(4 * 1024 * 1024); // the kernel did not take it all
    expect(inTurn).toBe(0);
    expect(nextTurn).toBeGreaterThan(4 * 1024 * 1024);
    client.resume();
    await waitUntil(() => received === FRAME * FRAMES, 'every frame');
    client.close();
  });
});

interface GqlClient {
  socket: WebSocket;
  /** Subscription id -> event types received. */
  events: Map<string, string[]>;
  closeCode?: number;
}

/**
 * A graphql-transport-ws client that subscribes `count` times to `query` once acknowledged, and
 * then stops reading when `pause` is set.
 */
async function gqlClient(
  server: SampleServer,
  query: string,
  count: number,
  pause = false,
): Promise<GqlClient> {
  const socket = new WebSocket(`${server.wsBase}/graphql`, 'graphql-transport-ws');
  sockets.push(socket);
  const client: GqlClient = { socket, events: new Map() };
  socket.on('error', () => undefined);
  socket.on('close', (code) => (client.closeCode = code));
  socket.on('message', (data) => {
    const m = JSON.parse(String(data)) as {
      type: string;
      id?: string;
      payload?: { data?: { telemetryUpdates?: { eventType: string } } };
    };
    if (m.type === 'connection_ack') {
      for (let i = 0; i < count; i++) {
        client.events.set(String(i), []);
        socket.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query } }));
      }
      if (pause) socket.pause();
    } else if (m.type === 'next') {
      client.events.get(m.id!)!.push(m.payload!.data!.telemetryUpdates!.eventType);
    }
  });
  await new Promise<void>((resolve) => socket.once('open', () => resolve()));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  return client;
}

const snapshotsComplete = (c: GqlClient, count: number): boolean =>
  c.events.size === count &&
  [...c.events.values()].every((e) => e.filter((t) => t === 'SNAPSHOT').length === SAMPLE_GPUS);

describe('GraphQL snapshots larger than WS_MAX_BUFFERED (16 KiB: 16 queued events)', () => {
  it('a client that reads gets the whole 247-GPU snapshot', async () => {
    sample = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024 });
    const client = await gqlClient(
      sample,
      'subscription { telemetryUpdates(snapshot: true) { eventType gpuId hostId } }',
      1,
    );
    await waitUntil(() => snapshotsComplete(client, 1) || client.closeCode !== undefined, 'the snapshot');
    expect(client.closeCode).toBeUndefined();
    expect(client.events.get('0')).toEqual(Array.from({ length: SAMPLE_GPUS }, () => 'SNAPSHOT'));
    client.socket.close();
  });

  it('a client that stops reading during 20 snapshots (megabytes) and then reads gets all of them', async () => {
    sample = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024 });
    const query =
      'subscription { telemetryUpdates(snapshot: true) { cursor eventType hostId gpuId data { values { field name unit kind value timestamp } } } }';
    const client = await gqlClient(sample, query, 20, true);
    const gqlWss = sample.realtime.endpoints.get('/graphql')!.wss;
    const server = [...gqlWss.clients][0]!;
    // The server's sends back up (they wait for the network) instead of dropping the client.
    let peak = 0;
    await waitUntil(() => {
      peak = Math.max(peak, server.bufferedAmount);
      return peak > 16 * 1024;
    }, 'the server to have unsent bytes');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.closeCode).toBeUndefined();
    client.socket.resume();
    await waitUntil(() => snapshotsComplete(client, 20) || client.closeCode !== undefined, '20 snapshots');
    expect(client.closeCode).toBeUndefined();
    for (const events of client.events.values()) expect(events).toHaveLength(SAMPLE_GPUS);
    client.socket.close();
  });
});

describe('GraphQL frames no subscription paces (WS_MAX_BUFFERED 16 KiB, 20 operations)', () => {
  it('a client that sends pings and reads no pongs is dropped; the server never holds more than the bound and the waiting frames', async () => {
    sample = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024, WS_MAX_SUBSCRIPTIONS: 20 });
    const socket = new WebSocket(`${sample.wsBase}/graphql`, 'graphql-transport-ws');
    sockets.push(socket);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('open', () => resolve()));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise<void>((resolve) => socket.once('message', () => resolve())); // connection_ack
    socket.pause();
    const gqlWss = sample.realtime.endpoints.get('/graphql')!.wss;
    const server = [...gqlWss.clients][0]!;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, server.bufferedAmount)), 1);
    // 2,000 pings of 4 KB each: 8 MB of pongs the client never reads.
    const ping = JSON.stringify({ type: 'ping', payload: { pad: 'x'.repeat(4000) } });
    for (let i = 0; i < 2000 && gqlWss.clients.size > 0; i++) {
      socket.send(ping);
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitUntil(() => gqlWss.clients.size === 0, 'the client to be dropped', 10_000);
    clearInterval(sampler);
    peak = Math.max(peak, server.bufferedAmount);
    // The bound, 2 x 20 + 2 waiting pongs and one more (about 4 KB each).
    expect(peak).toBeLessThanOrEqual(16 * 1024 + 43 * 4100);
  });
});

describe('GraphQL operation ids', () => {
  it('refuses (4409) an id reused while the operation completed under it still waits on a send', async () => {
    sample = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024 });
    const query =
      'subscription { telemetryUpdates(snapshot: true) { cursor eventType hostId gpuId data { values { field name unit kind value timestamp } } } }';
    const client = await gqlClient(sample, query, 20, true);
    const server = [...sample.realtime.endpoints.get('/graphql')!.wss.clients][0]!;
    await waitUntil(() => server.bufferedAmount > 16 * 1024, 'the server to have unsent bytes');
    // Operation 0 is completed by the client while its loop waits on a send, and 0 is reused.
    client.socket.send(JSON.stringify({ id: '0', type: 'complete' }));
    client.socket.send(
      JSON.stringify({
        id: '0',
        type: 'subscribe',
        payload: { query: 'subscription { telemetryUpdates { cursor } }' },
      }),
    );
    await waitUntil(() => server.readyState !== server.OPEN, 'the server to close the connection');
    client.socket.resume();
    await waitUntil(() => client.closeCode !== undefined, 'the close frame');
    expect(client.closeCode).toBe(4409);
  });
});
