/**
 * The hierarchy writer and reader with MIG instances and scrape presence, on the embedded store:
 * MIG samples (GPU_I_ID) land in their own records under the GPU and never in the GPU's values; a
 * batch carrying a scrape's presence marks the target's GPUs and instances the scrape left out as
 * gone (inactive at once, each a watch event), and a newer sample or scrape clears the mark.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createEtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import type { Batch, Sample, ScrapePresence } from '../../src/domain/types.js';
import { decodeWatchEvent, snapshotEvents } from '../../src/events/decode.js';
import { compileFilter } from '../../src/events/filter.js';
import { CLUSTERS_PREFIX, gpuKey, migKey, parseKey, parseRecordKey } from '../../src/hierarchy/paths.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import type { LiveGpuRecord, MigRecord } from '../../src/hierarchy/records.js';
import { HierarchyWriter, presenceUpdate } from '../../src/hierarchy/writer.js';
import type { Coordination, WatchEvent } from '../../src/ports/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { sample } from '../support/samples.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const TARGET = 'http://10.0.0.7:9400/metrics';
const STALE_AFTER_MS = 60_000;

/** dcgm-exporter labels of a GPU (and of one of its MIG instances). */
function labels(gpuId: string, instance?: string, profile?: string): Record<string, string> {
  const out: Record<string, string> = { gpu: gpuId, Hostname: 'node-a' };
  if (instance !== undefined) {
    out.GPU_I_ID = instance;
    out.GPU_I_PROFILE = profile ?? '';
  }
  return out;
}

/** One sample of `metric` for GPU `gpuId` of node-a (of its instance when given), at `t`. */
function s(
  gpuId: string,
  metric: string,
  value: number,
  t: number,
  instance?: string,
  profile?: string,
): Sample {
  return sample({
    hostname: 'node-a',
    gpuId,
    uuid: `GPU-${gpuId}`,
    device: `nvidia${gpuId}`,
    metric,
    value,
    timestampMs: t,
    labels: labels(gpuId, instance, profile),
  });
}

function scrapeBatch(
  samples: Sample[],
  t: number,
  presence?: Omit<ScrapePresence, 'target' | 'clusterId' | 'scrapeMs'>,
): Batch {
  const out: Batch = { id: `scrape-${t}-${samples.length}`, source: TARGET, samples, deadLetters: [] };
  if (presence) out.presence = { target: TARGET, clusterId: 'c1', scrapeMs: t, ...presence };
  return out;
}

let store: Coordination;
let now: number;
let writer: HierarchyWriter;
let reader: HierarchyReader;

beforeEach(() => {
  store = createEmbeddedCoordination();
  now = T0;
  writer = new HierarchyWriter({ coordination: store, now: () => now });
  reader = new HierarchyReader(store, STALE_AFTER_MS, () => now);
});

afterEach(async () => {
  await store.close();
});

async function record<T>(key: string): Promise<T> {
  const kv = await store.get(key);
  if (!kv) throw new Error(`no record at ${key}`);
  return JSON.parse(kv.value) as T;
}

describe('key layout', () => {
  it('parses MIG instance keys with parseRecordKey, and parseKey leaves them out', () => {
    const key = migKey('c/1', 'node a', '0', '7');
    expect(key).toBe('/telemetry/clusters/c%2F1/hosts/node%20a/gpus/0/mig/7');
    expect(parseRecordKey(key)).toEqual({
      kind: 'mig',
      clusterId: 'c/1',
      hostname: 'node a',
      gpuId: '0',
      instance: '7',
    });
    expect(parseKey(key)).toBeUndefined();
    expect(parseKey(gpuKey('c/1', 'node a', '0'))).toEqual({
      kind: 'gpu',
      clusterId: 'c/1',
      hostname: 'node a',
      gpuId: '0',
    });
    expect(parseRecordKey(`${key}/extra`)).toBeUndefined();
    expect(parseRecordKey(`${gpuKey('c', 'h', '0')}/mig/`)).toBeUndefined();
  });
});

describe('MIG instances', () => {
  it('keep their own records and values; the GPU keeps only its own series', async () => {
    await writer.apply(
      scrapeBatch(
        [
          s('0', 'DCGM_FI_DEV_GPU_TEMP', 41, T0),
          s('0', 'DCGM_FI_DEV_FB_USED', 1000, T0, '1', '1g.10gb'),
          s('0', 'DCGM_FI_DEV_FB_USED', 2000, T0, '2', '2g.20gb'),
          s('0', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', 0.25, T0, '1', '1g.10gb'),
          s('0', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', 0.75, T0, '2', '2g.20gb'),
          s('1', 'DCGM_FI_DEV_FB_USED', 500, T0),
        ],
        T0,
      ),
    );
    const gpu = await record<LiveGpuRecord>(gpuKey('c1', 'node-a', '0'));
    expect(Object.keys(gpu.metrics)).toEqual(['DCGM_FI_DEV_GPU_TEMP']);
    expect(gpu.target).toBe(TARGET);
    const one = await record<MigRecord>(migKey('c1', 'node-a', '0', '1'));
    expect(one).toMatchObject({
      instance: '1',
      profile: '1g.10gb',
      uuid: 'GPU-0',
      gpuId: '0',
      target: TARGET,
    });
    expect(one.metrics).toEqual({
      DCGM_FI_DEV_FB_USED: { value: 1000, timestampMs: T0 },
      DCGM_FI_PROF_GR_ENGINE_ACTIVE: { value: 0.25, timestampMs: T0 },
    });
    const two = await record<MigRecord>(migKey('c1', 'node-a', '0', '2'));
    expect(two.metrics.DCGM_FI_DEV_FB_USED?.value).toBe(2000);
    expect(two.profile).toBe('2g.20gb');

    const gpus = (await reader.listGpus('c1', 'node-a'))!;
    expect(gpus.map((g) => g.gpuId)).toEqual(['0', '1']);
    expect(gpus[0]!.migInstances.map((m) => [m.instance, m.profile, m.active])).toEqual([
      ['1', '1g.10gb', true],
      ['2', '2g.20gb', true],
    ]);
    expect(gpus[0]!.migInstances[1]!.metrics.DCGM_FI_PROF_GR_ENGINE_ACTIVE?.value).toBe(0.75);
    expect(gpus[1]!.migInstances).toEqual([]);
    // Instances are not GPUs: the host and cluster count two GPUs.
    expect((await reader.getHost('c1', 'node-a'))?.gpuCount).toBe(2);
    expect((await reader.getCluster('c1'))?.totals.total_gpus).toBe(2);
    expect((await reader.getMigInstance('c1', 'node-a', 'GPU-0', '2'))?.profile).toBe('2g.20gb');
    expect(await reader.getMigInstance('c1', 'node-a', '0', '3')).toBeUndefined();
  });

  it('create the GPU record when every series of the GPU is a MIG instance', async () => {
    await writer.apply(scrapeBatch([s('3', 'DCGM_FI_DEV_FB_USED', 10, T0 + 5, '9', '1g.10gb')], T0));
    const gpu = (await reader.getGpu('c1', 'node-a', '3'))!;
    expect(gpu.metrics).toEqual({});
    expect(gpu.lastSampleMs).toBe(T0 + 5);
    expect(gpu.active).toBe(true);
    expect(gpu.migInstances.map((m) => m.instance)).toEqual(['9']);
  });
});

describe('scrape presence', () => {
  const twoGpus = (t: number): Sample[] => [
    s('0', 'DCGM_FI_DEV_GPU_UTIL', 10, t),
    s('1', 'DCGM_FI_DEV_GPU_UTIL', 20, t),
    s('1', 'DCGM_FI_DEV_FB_USED', 30, t, '4', '1g.10gb'),
  ];
  const both = [
    { hostname: 'node-a', gpuId: '0', uuid: 'GPU-0' },
    { hostname: 'node-a', gpuId: '1', uuid: 'GPU-1' },
    { hostname: 'node-a', gpuId: '1', uuid: 'GPU-1', migInstance: '4' },
  ];

  it('marks the GPUs a complete scrape left out gone at once, as watch events, and a newer sample brings them back', async () => {
    await writer.apply(scrapeBatch(twoGpus(T0), T0, { gpus: both }));
    expect((await reader.listGpus('c1', 'node-a'))!.map((g) => g.active)).toEqual([true, true]);

    const events: WatchEvent[] = [];
    const watcher = await store.watch(CLUSTERS_PREFIX, {
      fromRevision: (await store.revision()) + 1,
      onEvent: (e) => events.push(e),
    });
    // The next scrape exposes GPU 0 only: GPU 1 and its instance are gone, one interval later.
    now = T0 + 15_000;
    await writer.apply(
      scrapeBatch([s('0', 'DCGM_FI_DEV_GPU_UTIL', 11, T0 + 15_000)], T0 + 15_000, { gpus: [both[0]!] }),
    );
    const gpus = (await reader.listGpus('c1', 'node-a'))!;
    expect(gpus.map((g) => [g.gpuId, g.active, g.goneSinceMs])).toEqual([
      ['0', true, undefined],
      ['1', false, T0 + 15_000],
    ]);
    expect(gpus[1]!.migInstances.map((m) => [m.instance, m.active])).toEqual([['4', false]]);
    const host = (await reader.getHost('c1', 'node-a'))!;
    expect([host.active, host.gpuCount, host.activeGpuCount]).toEqual([true, 2, 1]);
    expect((await reader.getCluster('c1'))!.totals.active_gpus).toBe(1);

    await expect.poll(() => events.length).toBeGreaterThanOrEqual(3);
    const puts = events.filter((e): e is Extract<WatchEvent, { type: 'put' }> => e.type === 'put');
    const goneKeys = puts
      .filter((e) => (JSON.parse(e.kv.value) as LiveGpuRecord).goneSinceMs !== undefined)
      .map((e) => e.kv.key)
      .sort();
    expect(goneKeys).toEqual([gpuKey('c1', 'node-a', '1'), migKey('c1', 'node-a', '1', '4')].sort());
    await watcher.cancel();

    // A late presence of an older scrape changes nothing; a sample older than the mark neither.
    now = T0 + 20_000;
    await writer.apply(scrapeBatch([s('1', 'DCGM_FI_DEV_GPU_UTIL', 99, T0 + 1)], T0 + 1, { gpus: both }));
    expect((await reader.getGpu('c1', 'node-a', '1'))!.active).toBe(false);

    // The scrape after that exposes GPU 1 again: its samples (newer than the mark) clear it.
    now = T0 + 30_000;
    await writer.apply(scrapeBatch(twoGpus(T0 + 30_000), T0 + 30_000, { gpus: both }));
    const back = (await reader.getGpu('c1', 'node-a', '1'))!;
    expect([back.active, back.goneSinceMs, back.metrics.DCGM_FI_DEV_GPU_UTIL?.value]).toEqual([
      true,
      undefined,
      20,
    ]);
    expect(back.migInstances.map((m) => m.active)).toEqual([true]);
  });

  it('marks every GPU of the target gone after a failed scrape (empty presence), and the host with them', async () => {
    await writer.apply(scrapeBatch(twoGpus(T0), T0, { gpus: both }));
    now = T0 + 15_000;
    await writer.apply(scrapeBatch([], T0 + 15_000, { gpus: [] }));
    const gpus = (await reader.listGpus('c1', 'node-a'))!;
    expect(gpus.map((g) => g.active)).toEqual([false, false]);
    expect((await reader.getHost('c1', 'node-a'))!.active).toBe(false);
    expect((await reader.getCluster('c1'))!.totals).toMatchObject({ active_hosts: 0, active_gpus: 0 });
  });

  it('leaves GPUs of other targets and sources alone, and a scrape listing a gone GPU clears it', async () => {
    // GPU 5 comes from a CSV file (no target), GPU 6 from another target.
    await writer.apply({
      id: 'csv',
      source: 'dump.csv',
      samples: [s('5', 'DCGM_FI_DEV_GPU_UTIL', 1, T0)],
      deadLetters: [],
    });
    await writer.apply({
      id: 'other',
      source: 'http://10.0.0.8:9400/metrics',
      samples: [s('6', 'DCGM_FI_DEV_GPU_UTIL', 1, T0)],
      deadLetters: [],
    });
    await writer.apply(scrapeBatch(twoGpus(T0), T0, { gpus: both }));
    now = T0 + 15_000;
    await writer.apply(scrapeBatch([], T0 + 15_000, { gpus: [] }));
    const active = Object.fromEntries(
      (await reader.listGpus('c1', 'node-a'))!.map((g) => [g.gpuId, g.active]),
    );
    expect(active).toEqual({ '0': false, '1': false, '5': true, '6': true });
    expect((await reader.getHost('c1', 'node-a'))!.active).toBe(true);

    // A presence listing GPU 0 (its samples in an earlier batch of that scrape) clears its mark.
    now = T0 + 30_000;
    await writer.apply(scrapeBatch([], T0 + 30_000, { gpus: [both[0]!] }));
    expect((await reader.getGpu('c1', 'node-a', '0'))!.active).toBe(true);
    expect((await reader.getGpu('c1', 'node-a', '1'))!.active).toBe(false);
  });

  it('presenceUpdate: marks, clears and ignores as documented', () => {
    const base: LiveGpuRecord = {
      clusterId: 'c1',
      hostname: 'h',
      gpuId: '0',
      uuid: 'GPU-0',
      device: '',
      modelName: '',
      metrics: {},
      lastSampleMs: 100,
      lastSeenMs: 100,
      target: TARGET,
    };
    expect(presenceUpdate(base, true, 200)).toBeUndefined();
    expect(presenceUpdate(base, false, 200)?.goneSinceMs).toBe(200);
    expect(presenceUpdate(base, false, 100)).toBeUndefined(); // holds a sample as new as the scrape
    const gone = { ...base, goneSinceMs: 200 };
    expect(presenceUpdate(gone, false, 300)).toBeUndefined();
    expect(presenceUpdate(gone, true, 150)).toBeUndefined();
    expect(presenceUpdate(gone, true, 200)).not.toHaveProperty('goneSinceMs');
  });
});

describe('events of MIG and gone records', () => {
  const put = (key: string, value: object): WatchEvent => ({
    type: 'put',
    revision: 7,
    kv: { key, value: JSON.stringify(value), createRevision: 1, modRevision: 7, version: 1 },
  });
  const gpu = { uuid: 'GPU-0', device: 'nvidia0', modelName: 'A100', lastSampleMs: 5, lastSeenMs: 6 };

  it('decodes instance puts as MIG_UPDATE, gone marks as *_INACTIVE, deletes as MIG_REMOVED', () => {
    const key = migKey('c1', 'node-a', '0', '2');
    const update = decodeWatchEvent(
      put(key, { ...gpu, metrics: { M: { value: 1, timestampMs: 5 } } }),
      0,
      3,
    )!;
    expect(update).toMatchObject({
      eventType: 'MIG_UPDATE',
      hostId: 'node-a',
      gpuIndex: '0',
      migInstance: '2',
      uuid: 'GPU-0',
      active: true,
      index: 3,
      metrics: { M: { value: 1, timestampMs: 5 } },
    });
    expect(decodeWatchEvent(put(key, { ...gpu, goneSinceMs: 9 }), 0, 0)).toMatchObject({
      eventType: 'MIG_INACTIVE',
      active: false,
    });
    expect(
      decodeWatchEvent(put(gpuKey('c1', 'node-a', '0'), { ...gpu, goneSinceMs: 9 }), 0, 0),
    ).toMatchObject({
      eventType: 'GPU_INACTIVE',
      gpuIndex: '0',
      active: false,
    });
    expect(decodeWatchEvent(put(gpuKey('c1', 'node-a', '0'), gpu), 0, 0)).toMatchObject({
      eventType: 'GPU_UPDATE',
      active: true,
    });
    expect(decodeWatchEvent({ type: 'delete', revision: 8, key }, 100, 0)).toMatchObject({
      eventType: 'MIG_REMOVED',
      gpuIndex: '0',
      migInstance: '2',
    });
  });

  it('leaves instances out of snapshots, and lets inactive marks through a metrics filter', () => {
    const kvs = [gpuKey('c1', 'h', '0'), migKey('c1', 'h', '0', '1')].map((key) => ({
      key,
      value: JSON.stringify(gpu),
      createRevision: 1,
      modRevision: 2,
      version: 1,
    }));
    expect(snapshotEvents(kvs, 2).map((e) => [e.eventType, e.migInstance])).toEqual([
      ['SNAPSHOT', undefined],
    ]);

    const filter = compileFilter({ hostId: 'h', gpuId: '0', metrics: ['gpuUtilization'] });
    const base = {
      revision: 1,
      clusterId: 'c1',
      hostId: 'h',
      gpuIndex: '0',
      timestampMs: 0,
      observedAtMs: 0,
    };
    expect(filter.matches({ ...base, eventType: 'GPU_INACTIVE', metrics: {} })).toBe(true);
    expect(filter.matches({ ...base, eventType: 'MIG_INACTIVE', migInstance: '1', metrics: {} })).toBe(true);
    const util = { DCGM_FI_DEV_GPU_UTIL: { value: 1, timestampMs: 0 } };
    expect(filter.matches({ ...base, eventType: 'MIG_UPDATE', migInstance: '1', metrics: util })).toBe(true);
    expect(filter.matches({ ...base, eventType: 'MIG_UPDATE', migInstance: '1', metrics: {} })).toBe(false);
    expect(filter.matches({ ...base, gpuIndex: '1', eventType: 'MIG_INACTIVE', metrics: {} })).toBe(false);
  });
});

describe('on a real etcd', () => {
  let etcd: EtcdHandle;
  let coordination: Coordination;

  beforeAll(async () => {
    etcd = await startEtcd({ members: 1 });
    coordination = await createEtcdCoordination({ endpoints: etcd.endpointList });
  }, 60_000);

  afterAll(async () => {
    await coordination?.close();
    await etcd?.stop();
  });

  it('keeps MIG instances under their GPU and marks a vanished GPU and its instance gone in one presence round', async () => {
    let clock = T0;
    const etcdWriter = new HierarchyWriter({ coordination, now: () => clock });
    const etcdReader = new HierarchyReader(coordination, STALE_AFTER_MS, () => clock);
    const present = [
      { hostname: 'node-a', gpuId: '0', uuid: 'GPU-0' },
      { hostname: 'node-a', gpuId: '1', uuid: 'GPU-1', migInstance: '3' },
    ];
    await etcdWriter.apply(
      scrapeBatch(
        [s('0', 'DCGM_FI_DEV_GPU_UTIL', 5, T0), s('1', 'DCGM_FI_DEV_FB_USED', 6, T0, '3', '3g.40gb')],
        T0,
        { gpus: present },
      ),
    );
    let gpus = (await etcdReader.listGpus('c1', 'node-a'))!;
    expect(gpus.map((g) => [g.gpuId, g.active, Object.keys(g.metrics)])).toEqual([
      ['0', true, ['DCGM_FI_DEV_GPU_UTIL']],
      ['1', true, []],
    ]);
    expect(
      gpus[1]!.migInstances.map((m) => [m.instance, m.profile, m.metrics.DCGM_FI_DEV_FB_USED?.value]),
    ).toEqual([['3', '3g.40gb', 6]]);

    clock = T0 + 10_000;
    await etcdWriter.apply(
      scrapeBatch([s('0', 'DCGM_FI_DEV_GPU_UTIL', 7, T0 + 10_000)], T0 + 10_000, { gpus: [present[0]!] }),
    );
    gpus = (await etcdReader.listGpus('c1', 'node-a'))!;
    expect(gpus.map((g) => [g.gpuId, g.active])).toEqual([
      ['0', true],
      ['1', false],
    ]);
    expect(gpus[1]!.migInstances.map((m) => [m.instance, m.active, m.goneSinceMs])).toEqual([
      ['3', false, T0 + 10_000],
    ]);
  });
});
