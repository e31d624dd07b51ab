/**
 * The event hub on the real embedded coordination store, with hand-written hierarchy records:
 * fresh, snapshot and resumed subscribers (from the ring, from the store's history with hand-over
 * to the shared watch, after compaction, with a cursor ahead of the store), filters, ordering
 * without gaps or duplicates, the shared watch cut off (resumed without a gap; its position
 * compacted meanwhile, on the embedded store and on real etcd behind a TCP proxy: RESYNC, a
 * snapshot equal to the store, then new events), an internal failure of the hub (restart, RESYNC
 * `restarted`), the bounded iterator and the ring itself.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmbeddedCoordination,
  type EmbeddedCoordination,
} from '../../src/adapters/embedded/coordination.js';
import { createEtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { NexusError } from '../../src/errors.js';
import { type Cursor, parseCursor, wholeRevision } from '../../src/events/cursor.js';
import { compileFilter } from '../../src/events/filter.js';
import { EventHub } from '../../src/events/hub.js';
import { subscribeBatchIterator, subscribeIterator, type EventIterator } from '../../src/events/iterator.js';
import { EventRing } from '../../src/events/ring.js';
import type { TelemetryEvent } from '../../src/events/types.js';
import { clusterKey, CLUSTERS_PREFIX, gpuKey, hostKey, parseKey } from '../../src/hierarchy/paths.js';
import type { Coordination, WatchOptions } from '../../src/ports/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { startTcpProxy } from '../sync/tcp-proxy.js';
import { waitUntil } from './harness.js';

let coordination: EmbeddedCoordination;
let hub: EventHub;

const uuid = (host: string, gpu: number) => `GPU-${host}-${gpu}`;

/** A GPU record as the collectors write it; `util` is its DCGM_FI_DEV_GPU_UTIL. */
function gpuRecord(host: string, gpu: number, util: number, cluster = 'c1'): string {
  return JSON.stringify({
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
  });
}

async function putGpu(host: string, gpu: number, util: number, cluster = 'c1'): Promise<number> {
  return coordination.put(gpuKey(cluster, host, String(gpu)), gpuRecord(host, gpu, util, cluster));
}

/**
 * `inner` with its watch calls recorded; while `hold()` is on, new watches wait for `release()`
 * (the store is unreachable for them), so the test decides what happens meanwhile.
 */
function interceptWatches(inner: Coordination) {
  const watches: WatchOptions[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const coordination: Coordination = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'watch')
        return async (prefix: string, options: WatchOptions) => {
          watches.push(options);
          if (gate) await gate;
          return target.watch(prefix, options);
        };
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    coordination,
    watches,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      gate = undefined;
      open?.();
    },
    /** Break the newest watch as a lost connection would. */
    breakWatch() {
      watches.at(-1)!.onError?.(new NexusError('BACKEND_UNAVAILABLE', 'etcd went away'));
    },
  };
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
const types = (events: TelemetryEvent[]) => events.map((e) => e.eventType);

/** Wait until the hub's shared watch has taken in revision `revision` (its ring reflects it). */
const caughtUp = (revision: number) => waitUntil(() => hub.head >= revision, `the hub at ${revision}`);

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
    for (let i = 5; i < 8; i++) await caughtUp(await putGpu('h1', 0, i));
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
    await caughtUp(await coordination.revision());
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
    await caughtUp(second);
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
    for (let round = 3; round < 12; round++) await caughtUp(await putThree(round));
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
    await caughtUp(await putGpu('h2', 0, 1));
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

  it('resumes its watch where it stopped after a lost connection: no gap, no duplicate, no RESYNC', async () => {
    const store = interceptWatches(coordination);
    const own = new EventHub({ coordination: store.coordination });
    const r = recorder();
    await own.subscribe({ filter: compileFilter({}), ...r });
    const a = await putGpu('h1', 0, 1);
    await waitUntil(() => r.events.length === 1, 'first event');
    store.hold();
    store.breakWatch();
    await waitUntil(() => store.watches.length === 2, 'the watch to reconnect');
    const missed = [await putGpu('h1', 0, 2), await putGpu('h1', 1, 3)]; // while it is cut off
    store.release();
    const c = await putGpu('h1', 0, 4);
    await waitUntil(() => r.events.length === 4, 'the missed and the new events');
    expect(revisions(r.events)).toEqual([a, ...missed, c]);
    expect(types(r.events)).toEqual(['GPU_UPDATE', 'GPU_UPDATE', 'GPU_UPDATE', 'GPU_UPDATE']);
    expect(own.stats).toMatchObject({ restarts: 1, resyncs: 0 });
    await own.close();
    expect(r.ended).toBeUndefined();
  });

  it('answers the compaction of its own watch position with RESYNC, a snapshot equal to the store, then live events', async () => {
    const store = interceptWatches(coordination);
    await putGpu('h1', 0, 1);
    await putGpu('h1', 1, 1);
    await putGpu('h2', 0, 1);
    const own = new EventHub({ coordination: store.coordination, historyLimit: 20 });
    const live = recorder();
    await own.subscribe({ filter: compileFilter({}), ...live });
    const hostOnly = recorder();
    await own.subscribe({ filter: compileFilter({ hostId: 'h1' }), ...hostOnly });
    const a = await putGpu('h1', 0, 2);
    await waitUntil(() => live.events.length === 1, 'first event');
    // Cut off; meanwhile a GPU goes, one changes, one comes, and the history is compacted.
    store.hold();
    store.breakWatch();
    await waitUntil(() => store.watches.length === 2, 'the watch to reconnect');
    await coordination.delete(gpuKey('c1', 'h1', '0'));
    await putGpu('h1', 1, 50);
    await putGpu('h3', 0, 60);
    const compactedAt = await coordination.revision();
    await coordination.compact(compactedAt);
    store.release();
    await waitUntil(() => live.events.length === 5, 'resync and snapshot');
    const [first, marker, ...snapshot] = live.events;
    expect(first!.revision).toBe(a);
    expect(marker).toMatchObject({ eventType: 'RESYNC', resync: { reason: 'compacted', snapshotSize: 3 } });
    expect(marker!.revision).toBeGreaterThanOrEqual(compactedAt);
    expect(
      snapshot.map((e) => [e.eventType, e.hostId, e.gpuIndex, e.metrics.DCGM_FI_DEV_GPU_UTIL?.value]),
    ).toEqual([
      ['SNAPSHOT', 'h1', '1', 50],
      ['SNAPSHOT', 'h2', '0', 1],
      ['SNAPSHOT', 'h3', '0', 60],
    ]);
    expect(snapshot.every((e) => e.revision === marker!.revision)).toBe(true);
    expect(own.head).toBe(marker!.revision);
    // Filters apply to the snapshot too.
    expect(types(hostOnly.events)).toEqual(['GPU_UPDATE', 'RESYNC', 'SNAPSHOT']);
    expect(hostOnly.events[1]!.resync).toEqual({ reason: 'compacted', snapshotSize: 1 });

    const next = await putGpu('h2', 0, 70);
    await waitUntil(() => live.events.length === 6, 'a live event after the resync');
    expect(live.events[5]).toMatchObject({ eventType: 'GPU_UPDATE', revision: next, hostId: 'h2' });
    // A client resuming from before the gap learns it too.
    const late = recorder();
    await own.subscribe({ filter: compileFilter({}), after: wholeRevision(a), ...late });
    await waitUntil(() => late.events.length === 4, 'the late resync');
    expect(late.events[0]).toMatchObject({
      eventType: 'RESYNC',
      resync: { reason: 'compacted', snapshotSize: 3 },
    });
    expect(own.stats.resyncs).toBe(3);
    await own.close();
  });

  it('restarts after an internal failure; live subscribers get RESYNC restarted, then live events', async () => {
    let explode = false;
    const own = new EventHub({
      coordination,
      restartDelayMs: 5,
      now: () => {
        if (explode) {
          explode = false;
          throw new Error('a bug in the hub');
        }
        return Date.now();
      },
    });
    const r = recorder();
    await own.subscribe({ filter: compileFilter({}), ...r });
    await putGpu('h1', 0, 1);
    await waitUntil(() => r.events.length === 1, 'first event');
    explode = true;
    await putGpu('h1', 0, 2); // its handling fails
    await waitUntil(() => own.stats.restarts === 1 && r.events.length >= 3, 'restart and resync');
    expect(types(r.events)).toEqual(['GPU_UPDATE', 'RESYNC', 'SNAPSHOT']);
    expect(r.events[1]!.resync).toEqual({ reason: 'restarted', snapshotSize: 1 });
    expect(r.events[2]!.metrics.DCGM_FI_DEV_GPU_UTIL?.value).toBe(2);
    const next = await putGpu('h1', 0, 3);
    await waitUntil(() => r.events.length === 4, 'live again');
    expect(r.events[3]!.revision).toBe(next);
    await own.close();
    expect(r.ended).toBeUndefined();
  });

  it('names the UUID of a removed GPU that was listed before the hub started', async () => {
    await putGpu('h7', 0, 1);
    const own = new EventHub({ coordination });
    const r = recorder();
    await own.subscribe({ filter: compileFilter({}), ...r });
    await coordination.delete(gpuKey('c1', 'h7', '0'));
    await waitUntil(() => r.events.length === 1, 'the removal');
    expect(r.events[0]).toMatchObject({ eventType: 'GPU_REMOVED', hostId: 'h7', uuid: uuid('h7', 0) });
    await own.close();
  });

  it('ends subscribers when the store closes', async () => {
    const r = recorder();
    await hub.subscribe({ filter: compileFilter({}), ...r });
    await coordination.close();
    await waitUntil(() => r.ended !== 'none', 'the end');
    expect((r.ended as NexusError).code).toBe('COORDINATION_CLOSED');
  });
});

/** A turn of the event loop or more: events put on either side are two deliveries. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

/** Write `gpus` GPU records of host `host` in one revision (one delivery of the hub). */
async function putGpus(host: string, round: number, gpus: number): Promise<number> {
  const ops = Array.from({ length: gpus }, (_, gpu) => ({
    type: 'put' as const,
    key: gpuKey('c1', host, String(gpu)),
    value: gpuRecord(host, gpu, round),
  }));
  return (await coordination.txn([], ops)).revision;
}

/**
 * Write `n` one-GPU revisions of `host`, a turn apart, that an unread subscription must still hold,
 * then one more, which must cut it off.
 */
async function expectCutOffAfter(n: number, host: string, overflowed: () => number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await nextTurn();
    await putGpu(host, 0, 100 + i);
  }
  await nextTurn();
  expect(overflowed()).toBe(0);
  await putGpu(host, 0, 999);
  await waitUntil(() => overflowed() === 1, 'overflow');
}

/** A subscription to everything with a bound of 3, counting its overflows, once the hub has it. */
async function boundedSubscription(): Promise<{ events: EventIterator; overflowed: () => number }> {
  let overflows = 0;
  const events = subscribeIterator(hub, {
    filter: compileFilter({}),
    maxQueued: 3,
    onOverflow: () => overflows++,
  });
  await waitUntil(() => hub.stats.subscribers === 1, 'subscribed');
  return { events, overflowed: () => overflows };
}

describe('subscribeIterator', () => {
  it('yields events in order and cuts off a consumer that falls behind', async () => {
    const { events: it1, overflowed } = await boundedSubscription();
    const a = await putGpu('h1', 0, 1);
    expect((await it1.next()).value?.revision).toBe(a);
    // One event per delivery: the bound is 3 + 2 x 1 waiting events; the sixth cuts it off.
    await expectCutOffAfter(5, 'h1', overflowed);
    await expect(async () => {
      for (;;) if ((await it1.next()).done) break;
    }).rejects.toThrow(/slow consumer/);
    expect(hub.stats.subscribers).toBe(0);

    const it2 = subscribeIterator(hub, { filter: compileFilter({}), maxQueued: 10 });
    await waitUntil(() => hub.stats.subscribers === 1, 'subscribed');
    await it2.return(undefined);
    expect(hub.stats.subscribers).toBe(0);
  });

  it('queues a revision bigger than its bound whole, keeps a consumer that reads while more arrive, cuts off one that stops', async () => {
    const { events, overflowed } = await boundedSubscription();
    const read = async (n: number, slowly: boolean): Promise<string[]> => {
      const got: string[] = [];
      while (got.length < n) {
        const step = await events.next();
        expect(step.done).toBe(false);
        got.push(`${step.value!.revision}:${step.value!.hostId}:${step.value!.gpuIndex}`);
        if (slowly) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return got;
    };
    // Twelve GPUs written in one revision (a hierarchy round, or a snapshot, of a fleet larger than
    // the bound): all twelve are queued and read.
    await nextTurn();
    const first = await putGpus('h9', 1, 12);
    expect(await read(12, false)).toEqual(Array.from({ length: 12 }, (_, i) => `${first}:h9:${i}`));
    // The same again, read slowly while six one-GPU revisions arrive in later turns.
    await nextTurn();
    const reading = read(18, true);
    const second = await putGpus('h9', 2, 12);
    const singles: number[] = [];
    for (let i = 0; i < 6; i++) {
      await nextTurn();
      singles.push(await putGpu('h8', 0, 30 + i));
    }
    expect(await reading).toEqual([
      ...Array.from({ length: 12 }, (_, i) => `${second}:h9:${i}`),
      ...singles.map((r) => `${r}:h8:0`),
    ]);
    expect(overflowed()).toBe(0);
    // A consumer that stops reading: 12 + 15 one-GPU revisions wait (3 + 2 x 12), the next cuts it off.
    await nextTurn();
    await putGpus('h9', 3, 12);
    await expectCutOffAfter(15, 'h8', overflowed);
    expect(hub.stats.subscribers).toBe(0);
  });
});

describe('subscribeIterator after catching up', () => {
  it('forgets a large delivery once the consumer caught up: a stall later is cut off by the bound for small ones', async () => {
    const { events, overflowed } = await boundedSubscription();
    await nextTurn();
    await putGpus('h5', 1, 12);
    for (let i = 0; i < 12; i++) expect((await events.next()).done).toBe(false);
    // Caught up; now one GPU per delivery, unread: 3 + 2 x 1 wait, the sixth cuts it off.
    await expectCutOffAfter(5, 'h5', overflowed);
    expect(hub.stats.subscribers).toBe(0);
  });
});

describe('subscribeBatchIterator', () => {
  it("yields a revision's events as one batch, the same array object for every subscriber", async () => {
    const putGpus = async (round: number, gpus: number): Promise<number> => {
      const ops = Array.from({ length: gpus }, (_, gpu) => ({
        type: 'put' as const,
        key: gpuKey('c1', 'h1', String(gpu)),
        value: gpuRecord('h1', gpu, round),
      }));
      return (await coordination.txn([], ops)).revision;
    };
    const a = subscribeBatchIterator(hub, { filter: compileFilter({}), maxQueued: 1000 });
    const b = subscribeBatchIterator(hub, { filter: compileFilter({}), maxQueued: 1000 });
    const hot = subscribeBatchIterator(hub, {
      filter: compileFilter({ gpuId: uuid('h1', 1) }),
      maxQueued: 1000,
    });
    const pending = [a.next(), b.next(), hot.next()];
    await waitUntil(() => hub.stats.subscribers === 3, 'subscribed');
    const first = await putGpus(1, 8);
    const [fromA, fromB, fromHot] = await Promise.all(pending);
    const batchA = fromA!.value as readonly TelemetryEvent[];
    expect(batchA.map((e) => `${e.revision}.${e.index}`)).toEqual(
      Array.from({ length: 8 }, (_, i) => `${first}.${i}`),
    );
    expect(fromB!.value).toBe(batchA); // shared: GraphQL executes it once per operation
    expect((fromHot!.value as readonly TelemetryEvent[]).map((e) => e.gpuIndex)).toEqual(['1']);
    // A second revision is a second batch; nothing of the first one is repeated.
    const second = await putGpus(2, 3);
    const next = (await a.next()).value as readonly TelemetryEvent[];
    expect(next.map((e) => e.revision)).toEqual([second, second, second]);
    await Promise.all([a.return(undefined), b.return(undefined), hot.return(undefined)]);
    expect(hub.stats.subscribers).toBe(0);

    // return() while a batch gathers: the batch is dropped, the pending next() is done.
    const c = subscribeBatchIterator(hub, { filter: compileFilter({}), maxQueued: 1000 });
    const pendingC = c.next();
    await waitUntil(() => hub.stats.subscribers === 1, 'subscribed');
    await putGpus(3, 8);
    await new Promise((resolve) => setImmediate(resolve)); // its first event is in: gathering
    await c.return(undefined);
    expect(await pendingC).toEqual({ done: true, value: undefined });
    expect(hub.stats.subscribers).toBe(0);
  });
});

describe('subscribeBatchIterator and large deliveries', () => {
  it('delivers a snapshot of 1,200 GPUs in batches of 500 and the event after it, without cutting off its reader', async () => {
    for (let part = 0; part < 10; part++) {
      const ops = Array.from({ length: 120 }, (_, i) => ({
        type: 'put' as const,
        key: gpuKey('c1', 'h7', String(part * 120 + i)),
        value: gpuRecord('h7', part * 120 + i, 1),
      }));
      await coordination.txn([], ops);
    }
    const gpus = (await coordination.range(CLUSTERS_PREFIX, { keysOnly: true })).kvs.filter(
      (kv) => parseKey(kv.key)?.kind === 'gpu',
    ).length;
    expect(gpus).toBeGreaterThanOrEqual(1200);
    let overflowed = 0;
    const batches = subscribeBatchIterator(hub, {
      filter: compileFilter({}),
      snapshot: true,
      maxQueued: 3,
      onOverflow: () => overflowed++,
    });
    const got: TelemetryEvent[] = [];
    const sizes: number[] = [];
    let written: Promise<number> | undefined;
    const reading = (async () => {
      while (got.length < gpus + 1) {
        const step = await batches.next();
        if (step.done) break;
        sizes.push(step.value.length);
        got.push(...step.value);
        // A live event arrives while the rest of the snapshot still waits to be read.
        written ??= putGpu('h6', 0, 1);
      }
    })();
    await reading;
    const after = await written!;
    expect(overflowed).toBe(0);
    expect(got.slice(0, gpus).every((e) => e.eventType === 'SNAPSHOT')).toBe(true);
    expect(got.at(-1)).toMatchObject({ eventType: 'GPU_UPDATE', revision: after });
    expect(Math.max(...sizes)).toBe(500);
    await batches.return(undefined);
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

describe('EventHub on etcd', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd({ members: 1 });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('survives a compaction past its watch position while cut off: RESYNC, a snapshot equal to etcd, then new events', async () => {
    const proxy = await startTcpProxy(etcd.endpoints[0]!);
    const direct = createEtcdCoordination({ endpoints: etcd.endpointList });
    const viaProxy = createEtcdCoordination({ endpoints: proxy.endpoint });
    const etcdHub = new EventHub({ coordination: viaProxy });
    const put = (host: string, gpu: number, util: number) =>
      direct.put(gpuKey('c1', host, String(gpu)), gpuRecord(host, gpu, util));
    try {
      await direct.put(clusterKey('c1'), JSON.stringify({ name: 'C1', region: 'r', lastSeenMs: 1 }));
      for (let g = 0; g < 4; g++) await put('h1', g, 1);
      const r = recorder();
      await etcdHub.subscribe({ filter: compileFilter({}), ...r });
      const a = await put('h1', 0, 2);
      await waitUntil(() => r.events.length === 1, 'the first event');
      expect(r.events[0]!.revision).toBe(a);

      // Frozen path: what etcd sends the hub now stays in the proxy, and is lost with the cut.
      proxy.pause();
      await direct.delete(gpuKey('c1', 'h1', '1'));
      for (let i = 0; i < 20; i++) await put('h1', 2, 10 + i);
      await put('h2', 0, 5);
      const compactedAt = await direct.revision();
      await direct.compact(compactedAt);
      proxy.cut();
      proxy.resume();

      await waitUntil(() => r.events.length >= 2 + 4, 'resync and snapshot', 60_000);
      const [, marker, ...snapshot] = r.events;
      expect(marker).toMatchObject({ eventType: 'RESYNC', resync: { reason: 'compacted', snapshotSize: 4 } });
      expect(marker!.revision).toBeGreaterThanOrEqual(compactedAt);
      // The snapshot is etcd's GPU records as they are (the deleted one absent, the latest values).
      const stored = (await direct.range(CLUSTERS_PREFIX)).kvs.filter((kv) => kv.key.includes('/gpus/'));
      const asStored = stored.map((kv) => {
        const v = JSON.parse(kv.value) as {
          hostname: string;
          gpuId: string;
          metrics: Record<string, { value: number }>;
        };
        return [v.hostname, v.gpuId, v.metrics.DCGM_FI_DEV_GPU_UTIL!.value];
      });
      expect(asStored).toEqual([
        ['h1', '0', 2],
        ['h1', '2', 29],
        ['h1', '3', 1],
        ['h2', '0', 5],
      ]);
      expect(snapshot.map((e) => [e.hostId, e.gpuIndex, e.metrics.DCGM_FI_DEV_GPU_UTIL?.value])).toEqual(
        asStored,
      );
      expect(snapshot.every((e) => e.eventType === 'SNAPSHOT' && e.revision === marker!.revision)).toBe(true);

      const next = await put('h1', 3, 99);
      await waitUntil(() => r.events.length === 7, 'a new event', 30_000);
      expect(r.events[6]).toMatchObject({
        eventType: 'GPU_UPDATE',
        revision: next,
        hostId: 'h1',
        gpuIndex: '3',
      });
      expect(etcdHub.stats.resyncs).toBe(1);
    } finally {
      await etcdHub.close();
      await viaProxy.close();
      await direct.close();
      await proxy.close();
    }
  });
});
