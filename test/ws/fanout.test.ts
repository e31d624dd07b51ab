/**
 * Fan-out under load: 100 /ws clients with different filters (host, GPU, metrics, everything) stay
 * subscribed while the bundled sample is replayed several times; each receives exactly the events of
 * its filter (checked against the store's own watch history), in order. One more client (20
 * subscriptions to everything) stops reading: it is dropped once its bytes unsent from earlier turns
 * pass WS_MAX_BUFFERED, and no server socket ever holds more than that bound and one turn's
 * delivery (src/api/ws/coalesce-sends.ts: a turn's sends are not counted against a client in that
 * turn); a GraphQL client that stops reading is dropped once its subscriptions have
 * WS_MAX_BUFFERED / 1024 events left from earlier turns. Bounded: at most 10 replays, every wait has
 * a timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { readSampleRows } from '../support/sample-csv.js';
import {
  CLUSTER,
  percentile,
  recordHierarchy,
  startSampleServer,
  waitUntil,
  type Recorded,
  type SampleServer,
} from './harness.js';

const CLIENTS = 100;
const MAX_BUFFERED = 256 * 1024;
const MAX_REPLAYS = 10;
const SLOW_SUBSCRIPTIONS = 20;

interface Filter {
  clusterId?: string;
  hostId?: string;
  gpuId?: string;
  metrics?: string[];
}

/** A lean client: keeps cursors and latencies only, so 100 of them stay small. */
class Client {
  readonly ws: WebSocket;
  readonly cursors: string[] = [];
  readonly latencies: { ms: number }[] = [];
  /** Characters of the event messages received. */
  eventChars = 0;
  subscribedAfter: string | undefined;

  constructor(
    url: string,
    readonly filter: Filter,
  ) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as {
        type: string;
        cursor?: string;
        event?: { observedAt: string | null };
      };
      if (m.type === 'welcome') this.ws.send(JSON.stringify({ type: 'subscribe', id: 's', filter }));
      else if (m.type === 'subscribed') this.subscribedAfter = m.cursor;
      else if (m.type === 'event') {
        const now = Date.now();
        this.eventChars += String(data).length;
        this.cursors.push(m.cursor!);
        if (m.event?.observedAt) this.latencies.push({ ms: now - Date.parse(m.event.observedAt) });
      }
    });
  }

  /** Whether a recorded write is one this client asked for. */
  wants(r: Recorded): boolean {
    const f = this.filter;
    if (f.clusterId !== undefined && r.clusterId !== f.clusterId) return false;
    if (f.hostId !== undefined && r.hostname !== f.hostId) return false;
    if (f.gpuId !== undefined && (r.kind !== 'gpu' || r.uuid !== f.gpuId)) return false;
    if (f.metrics)
      return r.kind === 'gpu' && r.type === 'put' && (r.metrics ?? []).includes('DCGM_FI_DEV_GPU_TEMP');
    return true;
  }
}

let server: SampleServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startSampleServer({ WS_MAX_BUFFERED: MAX_BUFFERED });
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await server?.close();
});

describe('100 subscribers while the sample is replayed', () => {
  it('each receives every event of its filter in order; a client that stops reading is dropped', async () => {
    const rows = readSampleRows();
    const hosts = [...new Set(rows.map((r) => r.hostname))];
    const uuids = [...new Set(rows.map((r) => r.uuid))];
    const filters: Filter[] = Array.from({ length: CLIENTS }, (_, i) => {
      switch (i % 4) {
        case 0:
          return { hostId: hosts[i % hosts.length]! };
        case 1:
          return { gpuId: uuids[(i * 7) % uuids.length]! };
        case 2:
          return { clusterId: CLUSTER, metrics: ['temperature'] };
        default:
          return {};
      }
    });
    for (const f of filters) clients.push(new Client(`${server.wsBase}/ws?subscribe=none`, f));

    // The slow client subscribes to everything SLOW_SUBSCRIPTIONS times (so each write costs it
    // that many messages and the kernel's socket buffers fill within a replay or two), then stops reading.
    const slow = new WebSocket(`${server.wsBase}/ws?subscribe=none`);
    slow.on('error', () => undefined);
    let acks = 0;
    slow.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'subscribed') acks += 1;
    });
    await new Promise<void>((resolve) => slow.once('open', () => resolve()));
    for (let i = 0; i < SLOW_SUBSCRIPTIONS; i++)
      slow.send(JSON.stringify({ type: 'subscribe', id: `all-${i}` }));
    await waitUntil(() => acks === SLOW_SUBSCRIPTIONS, 'the slow client subscribed');
    slow.pause();

    // A GraphQL client does the same over graphql-ws with a wide selection, then stops reading.
    const hub = server.realtime.hub;
    const slowGql = new WebSocket(`${server.wsBase}/graphql`, 'graphql-transport-ws');
    slowGql.on('error', () => undefined);
    slowGql.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type !== 'connection_ack') return;
      for (let i = 0; i < SLOW_SUBSCRIPTIONS; i++) {
        const query =
          'subscription { telemetryUpdates { cursor eventType hostId gpuId data { values { field name unit kind value timestamp } } } }';
        slowGql.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query } }));
      }
    });
    await new Promise<void>((resolve) => slowGql.once('open', () => resolve()));
    slowGql.send(JSON.stringify({ type: 'connection_init' }));

    await waitUntil(() => clients.every((c) => c.subscribedAfter !== undefined), 'every client subscribed');
    await waitUntil(
      () => hub.stats.subscribers === CLIENTS + 2 * SLOW_SUBSCRIPTIONS,
      'the slow GraphQL client',
    );
    slowGql.pause();
    const gqlWss = server.realtime.endpoints.get('/graphql')!.wss;

    const wss = server.realtime.endpoints.get('/ws')!.wss;
    let maxBuffered = 0;
    let maxTotal = 0;
    const sampler = setInterval(() => {
      let total = 0;
      for (const socket of wss.clients) {
        total += socket.bufferedAmount;
        maxBuffered = Math.max(maxBuffered, socket.bufferedAmount);
      }
      maxTotal = Math.max(maxTotal, total);
    }, 5);

    const recorder = await recordHierarchy(server.runtime);
    const heapBefore = process.memoryUsage().heapUsed;
    let replays = 0;
    let dropped = false;
    const started = Date.now();
    while (replays < MAX_REPLAYS) {
      await server.replay();
      replays += 1;
      dropped ||= wss.clients.size === CLIENTS;
      if (dropped && gqlWss.clients.size === 0 && replays >= 2) break;
    }
    const lastRevision = recorder.events.at(-1)!.revision;
    await recorder.stop();
    await waitUntil(() => wss.clients.size === CLIENTS, 'the slow client to be dropped', 10_000);
    // Its send buffer passed WS_MAX_BUFFERED (or a subscription's queue its bound): dropped.
    await waitUntil(() => gqlWss.clients.size === 0, 'the slow GraphQL client to be dropped', 10_000);
    expect(hub.stats.subscribers).toBe(CLIENTS);

    const expected = clients.map((c) => recorder.events.filter((r) => c.wants(r)).map((r) => r.cursor));
    await waitUntil(
      () => clients.every((c, i) => c.cursors.length >= expected[i]!.length),
      'every client to receive its events',
      30_000,
    );
    clearInterval(sampler);
    const heapAfter = process.memoryUsage().heapUsed;

    for (const [i, c] of clients.entries()) {
      expect(
        c.cursors.filter((cursor) => Number(cursor.split('.')[0]) <= lastRevision),
        `client ${i} ${JSON.stringify(c.filter)}`,
      ).toEqual(expected[i]);
    }
    // Every filter kind saw events; the everything-clients saw every write.
    expect(Math.min(...expected.map((e) => e.length))).toBeGreaterThan(0);
    expect(expected[3]!.length).toBe(recorder.events.length);

    // The slow client never held more than the bound and one turn's delivery: at most one replay's
    // events, on each of its subscriptions (what an everything-client got per replay, 20 times).
    const replayChars = Math.max(...clients.map((c, i) => (i % 4 === 3 ? c.eventChars : 0))) / replays;
    const oneTurn = SLOW_SUBSCRIPTIONS * replayChars;
    expect(maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED + oneTurn + 4096);
    expect(maxTotal).toBeLessThanOrEqual(CLIENTS * (MAX_BUFFERED + 4096) + MAX_BUFFERED + oneTurn + 4096);
    // Reading again, the slow client finds its connection gone (4503 if the close frame got through).
    const slowClosed = new Promise<number>((resolve) => slow.once('close', (code) => resolve(code)));
    slow.resume();
    expect([4503, 1006]).toContain(await slowClosed);

    const deliveries = clients.reduce((n, c) => n + c.cursors.length, 0);
    const latencies = clients.flatMap((c) => c.latencies.map((l) => l.ms)).sort((a, b) => a - b);
    // Latency is printed for the record only: what a stalled client costs the others is measured by
    // the slow-client pair in bench/events.ts (clients in their own threads, runs interleaved).
    console.info(
      `fan-out: ${replays} replays, ${recorder.events.length} writes, ${deliveries} deliveries in ${Date.now() - started} ms; ` +
        `slow client dropped at max buffered ${maxBuffered} B (bound ${MAX_BUFFERED}, one replay ${Math.round(replayChars)} B per subscription), peak total buffered ${maxTotal} B; ` +
        `heap ${Math.round(heapBefore / 2 ** 20)} -> ${Math.round(heapAfter / 2 ** 20)} MiB; ` +
        `latency p50/p99 ${percentile(latencies, 50)}/${percentile(latencies, 99)} ms (${latencies.length})`,
    );
  });
});
