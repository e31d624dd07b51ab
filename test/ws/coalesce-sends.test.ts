// coalesceSends: a burst of sends in one turn reaches the TCP socket as one write, and the client
// still gets every message, whole and in order. Real HTTP server, real ws client; the server
// socket's write calls are counted.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { coalesceSends, FLUSH_BYTES } from '../../src/api/ws/coalesce-sends.js';
import { startSampleServer, waitUntil, type SampleServer } from './harness.js';

interface Counted {
  writes: number;
}

/** What a burst looked like: the messages the client got (their `i`, in order) and the socket writes. */
interface Burst {
  seen: number[];
  writes: number;
}

/**
 * A server whose one connection gets `first` messages of `size` characters in one turn and `later`
 * more in a later turn (its socket's writes counted), and a client that reads them all.
 */
async function burst(coalesce: boolean, first: number, later = 0, size = 200): Promise<Burst> {
  const counted: Counted = { writes: 0 };
  const message = (i: number): string => JSON.stringify({ i, text: 'x'.repeat(size) });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = createServer();
  servers.push(server);
  server.on('upgrade', (request, socket: Duplex, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => {
      if (coalesce) coalesceSends(ws, socket);
      const raw = socket as Duplex & {
        _write: Duplex['_write'];
        _writev?: Duplex['_writev'];
      };
      const write = raw._write.bind(raw);
      raw._write = (chunk, encoding, callback) => {
        counted.writes += 1;
        write(chunk, encoding, callback);
      };
      const writev = raw._writev?.bind(raw);
      if (writev) {
        raw._writev = (chunks, callback) => {
          counted.writes += 1;
          writev(chunks, callback);
        };
      }
      for (let i = 0; i < first; i++) ws.send(message(i));
      setTimeout(() => {
        for (let i = first; i < first + later; i++) ws.send(message(i));
      }, 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  const seen: number[] = [];
  await new Promise<void>((resolve, reject) => {
    client.on('message', (data) => {
      const got = JSON.parse(String(data)) as { i: number; text: string };
      expect(got.text).toHaveLength(size);
      seen.push(got.i);
      if (seen.length === first + later) resolve();
    });
    client.on('error', reject);
  });
  client.close();
  return { seen, writes: counted.writes };
}

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('coalesceSends', () => {
  it('writes a burst of 50 messages in one turn as one socket write, every message whole and in order', async () => {
    const { seen, writes } = await burst(true, 50);
    expect(seen).toEqual(upTo(50));
    // The handshake's 101 response is written before the connection callback; the burst is one.
    expect(writes).toBe(1);
  });

  it('without it the same burst is a write per message (the test can tell)', async () => {
    const { seen, writes } = await burst(false, 50);
    expect(seen).toEqual(upTo(50));
    // Each write completes at once on loopback; a busy machine may merge a few.
    expect(writes).toBeGreaterThan(10);
  });

  it('a burst in a later turn is written on its own, after the first', async () => {
    const { seen, writes } = await burst(true, 3, 4);
    expect(seen).toEqual(upTo(7));
    expect(writes).toBe(2);
  });

  it(`a burst over FLUSH_BYTES goes out in writes of about that size`, async () => {
    // 50 frames of about 1 KiB: 16 or 17 of them pass 16 KiB, so three or four writes.
    const { seen, writes } = await burst(true, 50, 0, 1000);
    expect(seen).toEqual(upTo(50));
    expect(writes).toBeGreaterThanOrEqual(Math.floor((50 * 1000) / FLUSH_BYTES));
    expect(writes).toBeLessThanOrEqual(Math.ceil((50 * 1024) / FLUSH_BYTES) + 1);
  });
});

describe('coalesced sends and the slow-client bound (WS_MAX_BUFFERED 16 KiB)', () => {
  let server: SampleServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('a /ws snapshot far bigger than the bound reaches a client that reads', async () => {
    // The bundled sample's snapshot is 247 events of ~700 bytes (~170 KB) sent in one turn: while
    // corked, bufferedAmount holds all of it, which the bound must not count.
    server = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024 });
    const ws = new WebSocket(`${server.wsBase}/ws?snapshot=true`);
    const types: string[] = [];
    let closeCode: number | undefined;
    ws.on('message', (data) => types.push((JSON.parse(String(data)) as { type: string }).type));
    ws.on('close', (code) => (closeCode = code));
    await waitUntil(
      () => types.filter((t) => t === 'event').length === 247 || closeCode !== undefined,
      '/ws snapshot',
    );
    expect(closeCode).toBeUndefined();
    expect(types.filter((t) => t === 'event')).toHaveLength(247);
    ws.close();
  });

  it('a client that stops reading is still dropped', async () => {
    server = await startSampleServer({ WS_MAX_BUFFERED: 16 * 1024 });
    const ws = new WebSocket(`${server.wsBase}/ws`);
    let closeCode: number | undefined;
    ws.on('close', (code) => (closeCode = code));
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    const wss = server.realtime.endpoints.get('/ws')!.wss;
    await waitUntil(() => server!.realtime.hub.stats.subscribers === 1, 'the subscription');
    ws.pause();
    for (let i = 0; i < 20 && closeCode === undefined && wss.clients.size > 0; i++) await server.replay();
    await waitUntil(() => wss.clients.size === 0, 'the slow client to be dropped', 10_000);
    ws.resume();
    await waitUntil(() => closeCode !== undefined, 'the close frame', 10_000);
    // 4503 when the close frame gets through, 1006 when the stalled socket is cut off instead.
    expect([4503, 1006]).toContain(closeCode);
  });
});
