/**
 * The event hub on the real embedded coordination store, with hand-written hierarchy records:
 * fresh, snapshot and resumed subscribers (from the ring, from the store's history with hand-over
 * to the shared watch, after compaction, with a cursor ahead of the store), filters, ordering
 * without gaps or duplicates, a broken shared watch, the bounded iterator and the ring itself.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmbeddedCoordination,
  type EmbeddedCoordination,
} from '../../src/adapters/embedded/coordination.js';
import { NexusError } from '../../src/errors.js';
import { type Cursor, parseCursor, wholeRevision } from '../../src/events/cursor.js';
import { compileFilter } from '../../src/events/filter.js';
import { EventHub } from '../../src/events/hub.js';
import { subscribeIterator } from '../../src/events/iterator.js';
import { EventRing } from '../../src/events/ring.js';
import type { TelemetryEvent } from '../../src/events/types.js';
import { clusterKey, gpuKey, hostKey } from '../../src/hierarchy/paths.js';
import type { Coordination, WatchOptions } from '../../src/ports/coordination.js';
import { waitUntil } from './harness.js';

let coordination: EmbeddedCoordination;
let hub: EventHub;

const uuid = (host: string, gpu: number) => `GPU-${host}-${gpu}`;

async function putGpu(host: string, gpu: number, util: number, cluster = 'c1'): Promise<number> {
  const record = {
    clusterId: cluster,
    hostname: host,
    gpuId: String(gpu),
    uuid: uuid(host, gpu),
    device: `nvidia${gpu}`,
    modelName: 'NVIDIA H100 80GB HBM3',
    metrics: {
      DCGM_FI_DEV_GPU_UTIL: { value: util, timestampMs: 1000 + util },
      DCGM_FI_DEV_GPU_TEMP: { value: 40, timestampMs: 1000 },
    },
    lastSampleMs: 1000 + util,
    lastSeenMs: Date.now(),
  };
  return coordination.put(gpuKey(cluster, host, String(gpu)), JSON.stringify(record));
}

/** A subscriber that records what it gets. */
function recorder() {
  const events: TelemetryEvent[] = [];
  let ready: Cursor | undefined;
  let ended: Error | undefined | 'none' = 'none';
  return {
    events,
    get ready() {
      return ready;
    },
    get ended() {
      return ended;
    },
    onReady: (c: Cursor) => (ready = c),
    onEvent: (e: TelemetryEvent) => events.push(e),
    onEnd: (e?: Error) => (ended = e),
  };
}

beforeEach(async () => {
  coordination = createEmbeddedCoordination();
  await coordination.put(clusterKey('c1'), JSON.stringify({ name: 'C1', region: 'r', lastSeenMs: 1 }));
  hub = new EventHub({ coordination, historyLimit: 20, restartDelayMs: 10 });
  await hub.start();
});

afterEach(async () => {
  await hub.close();
  await coordination.close();
});

const revisions = (events: TelemetryEvent[]) => events.map((e) => e.revision);

describe('EventHub', () => {
  it('delivers live events in revision order, each once, to a fresh subscriber', async () => {
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), ...r });
    const written: number[] = [];
    for (let i = 0; i < 10; i++) written.push(await putGpu('h1', i % 3, i));
    await waitUntil(() => r.events.length === 10, '10 events');
    expect(revisions(r.events)).toEqual(written);
    expect(r.events[0]).toMatchObject({
      eventType: 'GPU_UPDATE',
      clusterId: 'c1',
      hostId: 'h1',
      gpuIndex: '0',
      uuid: uuid('h1', 0),
      metrics: { DCGM_FI_DEV_GPU_UTIL: { value: 0 } },
    });
  });

  it('filters by host, GPU (UUID or index within the host), metrics and event type', async () => {
    const subs = {
      host: recorder(),
      uuid: recorder(),
      index: recorder(),
      metrics: recorder(),
      hostsOnly: recorder(),
    };
    await hub.subscribe({ filter: compileFilter({ hostId: 'h2' }), ...subs.host });
    await hub.subscribe({ filter: compileFilter({ gpuId: uuid('h1', 1).toLowerCase() }), ...subs.uuid });
    await hub.subscribe({ filter: compileFilter({ hostId: 'h1', gpuId: '1' }), ...subs.index });
    await hub.subscribe({ filter: compileFilter({ metrics: ['smClock'] }), ...subs.metrics });
    await hub.subscribe({ filter: compileFilter({ eventTypes: ['HOST_UPDATE'] }), ...subs.hostsOnly });
    await putGpu('h1', 1, 5);
    await putGpu('h2', 1, 6);
    await coordination.put(hostKey('c1', 'h2'), JSON.stringify({ lastSeenMs: 5 }));
    await coordination.delete(gpuKey('c1', 'h1', '1'));
    await waitUntil(() => subs.hostsOnly.events.length === 1, 'the host event');
    await new Promise((r) => setTimeout(r, 20));
    expect(subs.host.events.map((e) => e.eventType)).toEqual(['GPU_UPDATE', 'HOST_UPDATE']);
    expect(subs.uuid.events.map((e) => e.eventType)).toEqual(['GPU_UPDATE', 'GPU_REMOVED']);
    expect(subs.uuid.events[1]!.uuid).toBe(uuid('h1', 1));
    expect(subs.index.events.map((e) => e.eventType)).toEqual(['GPU_UPDATE', 'GPU_REMOVED']);
    expect(subs.metrics.events).toEqual([]);
    expect(() => compileFilter({ gpuId: '0' })).toThrow(/index within a host/);
    expect(() => compileFilter({ metrics: ['warpSpeed'] })).toThrow(NexusError);
    expect(() => compileFilter({ eventTypes: ['NOPE' as 'SNAPSHOT'] })).toThrow(/unknown event type/);
  });

  it('resumes from the ring after a cursor, without gaps or duplicates', async () => {
    const first = recorder();
    const sub = await hub.subscribe({ filter: compileFilter({}), ...first });
    for (let i = 0; i < 5; i++) await putGpu('h1', 0, i);
    await waitUntil(() => first.events.length === 5, '5 events');
    sub.close();
    const cursor = first.events[2]!.revision;
    for (let i = 5; i < 8; i++) await putGpu('h1', 0, i);
    const second = recorder();
    await hub.subscribe({ filter: compileFilter({}), after: wholeRevision(cursor), ...second });
    expect(second.ready).toEqual(wholeRevision(cursor));
    await putGpu('h1', 0, 8);
    await waitUntil(() => second.events.length === 6, '6 events');
    expect(revisions(second.events)).toEqual([
      cursor + 1,
      cursor + 2,
      cursor + 3,
      cursor + 4,
      cursor + 5,
      cursor + 6,
    ]);
  });

  it("replays an older cursor from the store's history and hands over to the shared watch", async () => {
    const start = await coordination.revision();
    for (let i = 0; i < 60; i++) await putGpu('h1', i % 4, i); // 60 events, the ring keeps 20
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), after: wholeRevision(start), ...r });
    expect(hub.stats.replays).toBe(1);
    await waitUntil(() => r.events.length === 60, 'the replayed events');
    for (let i = 60; i < 70; i++) await putGpu('h1', 0, i);
    await waitUntil(() => r.events.length === 70, 'live events after the hand-over');
    expect(revisions(r.events)).toEqual(Array.from({ length: 70 }, (_, i) => start + 1 + i));
    expect(hub.stats.replaying).toBe(0);
  });

  it('numbers the changes of one txn and resumes inside it, from the ring and from history', async () => {
    // One txn writing three GPU records: three events at one revision, indexes 0..2.
    const putThree = async (round: number): Promise<number> => {
      const ops = [0, 1, 2].map((gpu) => ({
        type: 'put' as const,
        key: gpuKey('c1', 'h1', String(gpu)),
        value: JSON.stringify({ uuid: uuid('h1', gpu), metrics: {}, lastSampleMs: round, lastSeenMs: round }),
      }));
      return (await coordination.txn([], ops)).revision;
    };
    const live = recorder();
    await hub.subscribe({ filter: compileFilter({}), ...live });
    const first = await putThree(1);
    await waitUntil(() => live.events.length === 3, 'three events');
    const positions = (events: TelemetryEvent[]) => events.map((e) => `${e.revision}.${e.index}`);
    expect(positions(live.events)).toEqual([`${first}.0`, `${first}.1`, `${first}.2`]);
    expect(live.events.map((e) => e.gpuIndex)).toEqual(['0', '1', '2']);

    // A client that saw only the first change of the revision gets the other two, then what follows.
    const second = await putThree(2);
    const fromRing = recorder();
    await hub.subscribe({ filter: compileFilter({}), after: parseCursor(`${first}.0`), ...fromRing });
    expect(hub.stats.replays).toBe(0);
    expect(positions(fromRing.events)).toEqual([
      `${first}.1`,
      `${first}.2`,
      `${second}.0`,
      `${second}.1`,
      `${second}.2`,
    ]);

    // Push the first revision out of the ring (20 events): the rest of it comes from the store.
    for (let round = 3; round < 12; round++) await putThree(round);
    const fromHistory = recorder();
    await hub.subscribe({ filter: compileFilter({}), after: parseCursor(`${first}.1`), ...fromHistory });
    expect(hub.stats.replays).toBe(1);
    await waitUntil(() => fromHistory.events.length === 1 + 11 * 3 - 3, 'the replayed events');
    expect(positions(fromHistory.events).slice(0, 4)).toEqual([
      `${first}.2`,
      `${second}.0`,
      `${second}.1`,
      `${second}.2`,
    ]);
    const last = await putThree(12);
    await waitUntil(() => fromHistory.events.length === 34, 'live events after the hand-over');
    expect(positions(fromHistory.events).slice(-3)).toEqual([`${last}.0`, `${last}.1`, `${last}.2`]);
    expect(new Set(positions(fromHistory.events)).size).toBe(34);
  });

  it('answers a compacted cursor with RESYNC, a snapshot of every GPU, then live events', async () => {
    const start = await coordination.revision();
    for (let i = 0; i < 40; i++) await putGpu('h1', i % 4, i);
    await putGpu('h2', 0, 1);
    await coordination.compact(await coordination.revision());
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({ clusterId: 'c1' }), after: wholeRevision(start), ...r });
    await waitUntil(() => r.events.length >= 6, 'resync and snapshot');
    const [marker, ...snapshot] = r.events;
    expect(marker).toMatchObject({ eventType: 'RESYNC', resync: { reason: 'compacted', snapshotSize: 5 } });
    expect(snapshot.map((e) => [e.eventType, e.hostId, e.gpuIndex])).toEqual([
      ['SNAPSHOT', 'h1', '0'],
      ['SNAPSHOT', 'h1', '1'],
      ['SNAPSHOT', 'h1', '2'],
      ['SNAPSHOT', 'h1', '3'],
      ['SNAPSHOT', 'h2', '0'],
    ]);
    expect(snapshot.every((e) => e.revision === marker!.revision)).toBe(true);
    const next = await putGpu('h1', 0, 99);
    await waitUntil(() => r.events.length === 7, 'a live event');
    expect(r.events[6]!.revision).toBe(next);
  });

  it('answers a cursor ahead of the store with RESYNC unknown_cursor', async () => {
    await putGpu('h1', 0, 1);
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), after: wholeRevision(1_000_000), ...r });
    expect(r.events[0]).toMatchObject({
      eventType: 'RESYNC',
      resync: { reason: 'unknown_cursor', snapshotSize: 1 },
    });
    await expect(
      hub.subscribe({ filter: compileFilter({}), after: wholeRevision(-1), ...recorder() }),
    ).rejects.toThrow(/cursor/);
  });

  it('starts with a snapshot when asked', async () => {
    await putGpu('h1', 0, 1);
    await putGpu('h1', 1, 1);
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), snapshot: true, ...r });
    expect(r.events.map((e) => e.eventType)).toEqual(['SNAPSHOT', 'SNAPSHOT']);
  });

  it('restarts a broken shared watch and resyncs live subscribers', async () => {
    const watches: WatchOptions[] = [];
    const flaky: Coordination = new Proxy(coordination, {
      get(target, prop, receiver) {
        if (prop === 'watch')
          return (prefix: string, options: WatchOptions) => {
            watches.push(options);
            return target.watch(prefix, options);
          };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const own = new EventHub({ coordination: flaky, restartDelayMs: 5 });
    const r = recorder();
    await own.subscribe({ filter: compileFilter({}), ...r });
    await putGpu('h1', 0, 1);
    await waitUntil(() => r.events.length === 1, 'first event');
    watches[0]!.onError?.(new NexusError('BACKEND_UNAVAILABLE', 'etcd went away'));
    await waitUntil(() => own.stats.restarts === 1 && r.events.length >= 3, 'restart and resync');
    expect(r.events.slice(1).map((e) => e.eventType)).toEqual(['RESYNC', 'SNAPSHOT']);
    expect(r.events[1]!.resync?.reason).toBe('restarted');
    const next = await putGpu('h1', 0, 2);
    await waitUntil(() => r.events.length === 4, 'live again');
    expect(r.events[3]!.revision).toBe(next);
    await own.close();
    expect(r.ended).toBeUndefined();
  });

  it('ends subscribers when the store closes', async () => {
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), ...r });
    await coordination.close();
    await waitUntil(() => r.ended !== 'none', 'the end');
    expect((r.ended as NexusError).code).toBe('COORDINATION_CLOSED');
  });
});

describe('subscribeIterator', () => {
  it('yields events in order and cuts off a consumer that falls behind', async () => {
    let overflowed = 0;
    const it1 = subscribeIterator(hub, {
      filter: compileFilter({}),
      maxQueued: 3,
      onOverflow: () => overflowed++,
    });
    await waitUntil(() => hub.stats.subscribers === 1, 'subscribed');
    const a = await putGpu('h1', 0, 1);
    expect((await it1.next()).value?.revision).toBe(a);
    for (let i = 0; i < 5; i++) await putGpu('h1', 0, 10 + i);
    await waitUntil(() => overflowed === 1, 'overflow');
    await expect(async () => {
      for (;;) if ((await it1.next()).done) break;
    }).rejects.toThrow(/slow consumer/);
    expect(hub.stats.subscribers).toBe(0);

    const it2 = subscribeIterator(hub, { filter: compileFilter({}), maxQueued: 10 });
    await waitUntil(() => hub.stats.subscribers === 1, 'subscribed');
    await it2.return(undefined);
    expect(hub.stats.subscribers).toBe(0);
  });
});

describe('EventRing', () => {
  const ev = (revision: number): TelemetryEvent => ({
    eventType: 'GPU_UPDATE',
    revision,
    clusterId: 'c',
    timestampMs: 0,
    observedAtMs: 0,
    metrics: {},
  });

  it('keeps at most its capacity, dropping whole revisions, and knows what it covers', () => {
    const ring = new EventRing(3, 10);
    const at = wholeRevision;
    expect(ring.covers(at(9))).toBe(true);
    expect(ring.covers(at(8))).toBe(false);
    for (const r of [10, 11, 11, 12]) ring.push(ev(r));
    expect(ring.size).toBe(3);
    expect(ring.floor).toBe(11);
    ring.push(ev(13));
    // Revision 11 had two events: both go, never half a revision.
    expect(revisions(ring.since(at(0)))).toEqual([12, 13]);
    expect(ring.floor).toBe(12);
    expect(ring.covers(at(11))).toBe(true);
    expect(ring.covers(at(10))).toBe(false);
    expect(revisions(ring.since(at(12)))).toEqual([13]);
    expect(ring.head).toBe(13);
  });

  it('serves a cursor inside a revision with the rest of that revision, and only while it holds it', () => {
    const ring = new EventRing(10, 10);
    for (const [r, i] of [
      [10, 0],
      [11, 0],
      [11, 1],
      [11, 2],
      [12, 0],
    ] as const)
      ring.push({ ...ev(r), index: i });
    const positions = (events: TelemetryEvent[]) => events.map((e) => `${e.revision}.${e.index}`);
    expect(positions(ring.since(parseCursor('11.0')))).toEqual(['11.1', '11.2', '12.0']);
    expect(positions(ring.since(parseCursor('11.2')))).toEqual(['12.0']);
    expect(positions(ring.since(parseCursor('11')))).toEqual(['12.0']);
    expect(ring.covers(parseCursor('10.0'))).toBe(true);
    expect(ring.covers(parseCursor('9.0'))).toBe(false); // revision 9's rest is not held
    expect(ring.covers(parseCursor('9'))).toBe(true);
  });
});

describe('cursors', () => {
  it('parse R and R.i, and refuse anything else with a message naming the parameter', () => {
    expect(parseCursor('1271')).toEqual(wholeRevision(1271));
    expect(parseCursor(1271)).toEqual(wholeRevision(1271));
    expect(parseCursor('1271.3')).toEqual({ revision: 1271, index: 3 });
    for (const bad of ['', '-1', '1.2.3', 'abc', '1e3', '12345678901234567', '1.', {}, null]) {
      expect(() => parseCursor(bad), String(bad)).toThrow(/after must be a cursor from this server/);
    }
  });
});
