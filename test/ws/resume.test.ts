/**
 * Resumable streams on both transports. A subscriber is cut off by the server in the middle of a
 * replay (forced disconnect) and reconnects with the last cursor it saw: together, its two
 * connections received every write exactly once, in order, whether the missed events came from the
 * hub's ring or, for a cursor older than the ring, from the store's history. When that history was
 * compacted, the stream says `resync`, sends a snapshot of every GPU, then live events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareCursors,
  JsonSocket,
  recordHierarchy,
  startSampleServer,
  waitUntil,
  type SampleServer,
} from './harness.js';

let server: SampleServer;

beforeAll(async () => {
  // A small ring (300 events, about one replay) so that old cursors need the store's history.
  server = await startSampleServer({ EVENT_HISTORY: 300 });
});

afterAll(async () => {
  await server?.close();
});

/** Terminate every server-side socket of a WebSocket endpoint. */
function cutAll(path: string): void {
  for (const socket of server.realtime.endpoints.get(path)!.wss.clients) socket.terminate();
}

const ascending = (xs: string[]) => xs.every((x, i) => i === 0 || compareCursors(x, xs[i - 1]!) > 0);

/** /ws: connect with a cursor and collect event cursors. */
async function wsSubscriber(after?: string) {
  const s = new JsonSocket(`${server.wsBase}/ws?subscribe=none`);
  await s.opened;
  s.send({ type: 'subscribe', id: 'all', ...(after !== undefined ? { after } : {}) });
  await s.next((m) => m.type === 'subscribed', 'subscribed');
  return s;
}
const wsCursors = (s: JsonSocket) => s.ofType('event', 'all').map((m) => String(m.cursor));

/** graphql-ws: subscribe to telemetryUpdates with a cursor and collect events. */
async function gqlSubscriber(after?: string) {
  const s = new JsonSocket(`${server.wsBase}/graphql`, 'graphql-transport-ws');
  await s.opened;
  s.send({ type: 'connection_init' });
  await s.next((m) => m.type === 'connection_ack', 'ack');
  const before = server.realtime.hub.stats.subscribers;
  s.send({
    id: 'u',
    type: 'subscribe',
    payload: {
      query: `subscription ($after: String) {
        telemetryUpdates(after: $after) { cursor eventType hostId gpuId resyncReason snapshotSize }
      }`,
      variables: after !== undefined ? { after } : {},
    },
  });
  await waitUntil(() => server.realtime.hub.stats.subscribers > before, 'the subscription');
  return s;
}
const gqlEvents = (s: JsonSocket) =>
  s
    .ofType('next', 'u')
    .map((m) => (m.payload as { data: { telemetryUpdates: Record<string, unknown> } }).data.telemetryUpdates);
const gqlCursors = (s: JsonSocket) => gqlEvents(s).map((e) => String(e.cursor));

describe.each([
  { transport: '/ws', path: '/ws', connect: wsSubscriber, cursors: wsCursors },
  { transport: 'GraphQL', path: '/graphql', connect: gqlSubscriber, cursors: gqlCursors },
])('$transport subscriber reconnecting with its cursor', ({ path, connect, cursors }) => {
  it('misses no event across a forced disconnect in the middle of a replay', async () => {
    const recorder = await recordHierarchy(server.runtime);
    const first = await connect();
    const replay = server.replay();
    await waitUntil(() => cursors(first).length >= 40, 'some events before the cut');
    cutAll(path);
    await first.closed;
    const seen = cursors(first);
    const second = await connect(seen.at(-1));
    await replay;
    const all = recorder.events.map((e) => e.cursor);
    await waitUntil(() => [...seen, ...cursors(second)].length >= all.length, 'the rest of the events');
    await recorder.stop();
    const union = [...seen, ...cursors(second)];
    expect(ascending(union)).toBe(true);
    expect(union).toEqual(all);
    second.close();
  });

  it('gets events older than the ring from the store history, then live ones', async () => {
    const first = await connect();
    const recorder = await recordHierarchy(server.runtime);
    await server.replay();
    await waitUntil(() => cursors(first).length >= recorder.events.length, 'the first replay');
    first.close();
    const cursor = cursors(first).at(-1)!;
    await server.replay(); // the 300-event ring no longer reaches back to `cursor`
    await server.replay();
    const replaysBefore = server.realtime.hub.stats.replays;
    const second = await connect(cursor);
    await waitUntil(() => server.realtime.hub.stats.replays > replaysBefore, 'a replay from the store');
    await server.replay();
    const expected = recorder.events.map((e) => e.cursor).filter((c) => compareCursors(c, cursor) > 0);
    await waitUntil(() => cursors(second).length >= expected.length, 'every missed and live event');
    await recorder.stop();
    expect(cursors(second)).toEqual(expected);
    second.close();
  });
});

describe('after compaction', () => {
  it('/ws sends resync, a snapshot of every GPU, then live events', async () => {
    const old = await server.runtime.coordination.revision();
    // Two replays: the ring no longer covers `old` (a cursor the ring covers is served from it,
    // compaction or not), and then the store's history before now is compacted away.
    await server.replay();
    await server.replay();
    await server.runtime.coordination.compact(await server.runtime.coordination.revision());
    const s = await wsSubscriber(String(old));
    const resync = await s.next((m) => m.type === 'resync', 'resync');
    expect(resync).toMatchObject({ id: 'all', reason: 'compacted', snapshotSize: 247 });
    await waitUntil(() => s.ofType('event', 'all').length >= 247, 'the snapshot');
    const snapshot = s.ofType('event', 'all').slice(0, 247);
    expect(snapshot.every((m) => (m.event as { eventType: string }).eventType === 'SNAPSHOT')).toBe(true);
    expect(new Set(snapshot.map((m) => (m.event as { gpuId: string }).gpuId)).size).toBe(247);
    expect(snapshot.every((m) => m.cursor === resync.cursor)).toBe(true);
    await server.replay();
    await waitUntil(() => s.ofType('event', 'all').length >= 247 * 2, 'live events');
    const live = s.ofType('event', 'all').slice(247);
    expect(live.every((m) => compareCursors(String(m.cursor), String(resync.cursor)) > 0)).toBe(true);
    s.close();
  });

  it('GraphQL sends a RESYNC event with its reason and snapshot size, then SNAPSHOT events', async () => {
    const old = await server.runtime.coordination.revision();
    // Two replays: the ring no longer covers `old` (a cursor the ring covers is served from it,
    // compaction or not), and then the store's history before now is compacted away.
    await server.replay();
    await server.replay();
    await server.runtime.coordination.compact(await server.runtime.coordination.revision());
    const s = await gqlSubscriber(String(old));
    await waitUntil(() => gqlEvents(s).length >= 248, 'resync and snapshot');
    const [marker, ...rest] = gqlEvents(s);
    expect(marker).toMatchObject({ eventType: 'RESYNC', resyncReason: 'COMPACTED', snapshotSize: 247 });
    expect(rest.slice(0, 247).every((e) => e.eventType === 'SNAPSHOT' && e.cursor === marker!.cursor)).toBe(
      true,
    );
    s.close();
  });
});
