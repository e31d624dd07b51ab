// The fast path of long ranges equals the raw computation: attribution over several days of
// generated workloads, read from the 1d/1h/1m rollups (whole days from samples_1d) and from every
// raw sample, for day-aligned ranges and ranges cut inside minutes; the scrape intervals the store
// computes in SQL (sampleSpacing) equal the ones computed from raw samples in JS; retention trims
// the daily rollup with the hourly one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore, type PgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { attribution, type AttributionRow, type GroupBy } from '../../src/analytics/attribution.js';
import { estimateIntervals } from '../../src/analytics/interval.js';
import { parsePrices } from '../../src/analytics/prices.js';
import type { Sample } from '../../src/domain/types.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { summarizeStatement } from '../../src/storage/sql-sample-store.js';
import { batch } from '../support/samples.js';
import { analyticsFleet, METRICS, type AnalyticsFleet } from './fleet.js';

const START = Date.parse('2026-03-02T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const DAYS = 3;
const prices = parsePrices('H100=2.5,A100=1.2,default=1');

let fleet: AnalyticsFleet;

beforeAll(async () => {
  fleet = await analyticsFleet({
    hosts: 1,
    gpusPerHost: 8,
    intervalMs: 5 * MIN,
    durationMs: DAYS * DAY,
    start: START,
    seed: 11,
    workloadFraction: 0.85,
    metrics: METRICS,
  });
}, 300_000);

afterAll(async () => {
  await fleet?.close();
});

/** The two answers agree: same groups in the same order, figures within 1e-9 (addition order). */
function expectSame(fast: AttributionRow[], raw: AttributionRow[]): void {
  expect(fast.map((r) => [r.key, r.gpus])).toEqual(raw.map((r) => [r.key, r.gpus]));
  fast.forEach((r, i) => {
    const s = raw[i]!;
    for (const f of [
      'gpuHoursAllocated',
      'gpuHoursBusy',
      'energyKwh',
      'avgUtilization',
      'peakUtilization',
      'avgMemoryUsedMiB',
      'peakMemoryUsedMiB',
      'allocatedCost',
      'effectiveCost',
    ] as const) {
      expect(Math.abs(r[f] - s[f]), `${r.key} ${f}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(s[f])));
    }
  });
}

describe('attribution over several days: rollups (1d for whole days) equal raw', () => {
  const ranges: [string, number, number][] = [
    ['three whole days', START, START + DAYS * DAY],
    [
      'cut inside minutes at both ends',
      START + 7 * HOUR + 13 * MIN + 29_000,
      START + DAYS * DAY - 5 * HOUR - 4 * MIN - 1_000,
    ],
    ['one whole day and hours either side', START + 20 * HOUR, START + 2 * DAY + 3 * HOUR],
    ['under a day, across midnight', START + 22 * HOUR + 30 * MIN, START + DAY + 2 * HOUR + 10 * MIN],
  ];
  for (const [name, startMs, endMs] of ranges)
    for (const by of ['namespace', 'pod', 'label:team', 'host'] as GroupBy[])
      it(`${name}, by ${by}`, async () => {
        const fast = await attribution(fleet.store, { startMs, endMs, by, mode: 'rollup', prices });
        const raw = await attribution(fleet.store, { startMs, endMs, by, mode: 'raw', prices });
        expect(fast.length).toBeGreaterThan(by === 'host' ? 0 : 1);
        expect(fast.reduce((n, r) => n + r.gpuHoursAllocated, 0)).toBeGreaterThan(0);
        expectSame(fast, raw);
      });

  it('the whole days of a 1h summary are read from samples_1d, the hours around them from samples_1h', () => {
    const text = (startMs: number, endMs: number, resolution: '1h' | '1m' | 'raw' = '1h') =>
      summarizeStatement({ filter: { metrics: ['M'] }, startMs, endMs, resolution }).text;
    const parts = (t: string) => [...t.matchAll(/FROM (samples\w*)\s+WHERE/g)].map((m) => m[1]);
    expect(parts(text(START + 20 * HOUR, START + 2 * DAY + 3 * HOUR))).toEqual([
      'samples_1h',
      'samples_1d',
      'samples_1h',
    ]);
    expect(parts(text(START, START + DAYS * DAY))).toEqual(['samples_1d']);
    expect(parts(text(START + HOUR, START + DAY))).toEqual(['samples_1h']);
    expect(parts(text(START, START + 2 * DAY, '1m'))).toEqual(['samples_1m']);
    // Raw edges read samples, for the series with a 1-minute bucket there (once per half of the
    // raw read: rows and chunks).
    expect(parts(text(START, START + MIN, 'raw'))).toEqual(['samples', 'samples_1m', 'samples_1m']);
  });
});

/** The store without its SQL interval estimate: analytics then reads raw samples in JS. */
function withoutSpacing(store: SampleStore): SampleStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'sampleSpacing') return undefined;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('scrape intervals computed by the store equal the ones computed from raw samples', () => {
  let store: PgliteSampleStore;
  const T0 = Date.parse('2026-05-04T00:00:00Z');
  const END = T0 + 12 * HOUR;

  beforeAll(async () => {
    store = await createPgliteSampleStore({ memory: true });
    await store.migrate();
    const samples: Sample[] = [];
    const base = {
      clusterId: 'c1',
      hostname: 'h1',
      uuid: 'GPU-x',
      device: 'nvidia0',
      modelName: 'NVIDIA A100-SXM4-80GB',
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      container: 'c',
      pod: 'p',
      namespace: 'ns',
      labels: {} as Record<string, string>,
    };
    const add = (gpuId: string, ts: number, labels: Record<string, string> = {}, pod = 'p'): void => {
      samples.push({ ...base, gpuId, pod, labels, timestampMs: ts, value: 50 });
    };
    // GPU 0: every 30 s with a missed scrape and a second workload on the same timestamps.
    for (let t = T0; t < END; t += 30_000) if ((t / 30_000) % 97 !== 0) add('0', t);
    for (let t = END - HOUR; t < END; t += 30_000) add('0', t, {}, 'other');
    // GPU 1: every 2 minutes, stopping 3 hours before the end (found by the 6-hour probe).
    for (let t = T0; t < END - 3 * HOUR; t += 2 * MIN) add('1', t);
    // GPU 2: every 10 minutes, stopping 8 hours before the end (found by the whole-range probe).
    for (let t = T0; t < END - 8 * HOUR; t += 10 * MIN) add('2', t);
    // GPU 3: one sample only (takes the fleet median).
    add('3', T0 + HOUR);
    // GPU 4: two MIG instances, every 15 s, and in an uneven 20/40 s rhythm from hour 6 on.
    for (let t = T0; t < END; t += 15_000) add('4', t, { GPU_I_ID: '1', GPU_I_PROFILE: '3g.40gb' });
    for (let t = T0 + 6 * HOUR, i = 0; t < END; t += i++ % 2 === 0 ? 20_000 : 40_000)
      add('4', t, { GPU_I_ID: '2', GPU_I_PROFILE: '1g.10gb' });
    for (let i = 0; i < samples.length; i += 5000)
      await store.writeBatch(batch(samples.slice(i, i + 5000), [], `iv-${i}`));
  }, 120_000);

  afterAll(async () => {
    await store?.close();
  });

  it('per GPU and MIG instance, for ranges that need one, two and three probes', async () => {
    for (const [startMs, endMs] of [
      [T0, END],
      [T0 + HOUR, END - 10 * MIN],
      [T0 + 2 * HOUR + 7_000, END - 2 * HOUR - 13_000],
    ] as const) {
      const sql = await estimateIntervals(store, startMs, endMs);
      const js = await estimateIntervals(withoutSpacing(store), startMs, endMs);
      expect(sql).toEqual(js);
      expect(sql.byGpu.size).toBeGreaterThanOrEqual(3);
    }
    const all = await estimateIntervals(store, T0, END);
    expect(
      Object.fromEntries([...all.byGpu].map(([k, v]) => [k.split('\u0000').slice(2).join('/'), v])),
    ).toEqual({
      '0/': 30_000,
      '1/': 120_000,
      '2/': 600_000,
      '4/1': 15_000,
      '4/2': 20_000, // the median gap, not the mean one (30 s)
    });
  });
});

describe('retention trims the daily rollup with the hourly one', () => {
  it('deletes the days wholly older than the rollup bound, keeps the rest', async () => {
    const store = await createPgliteSampleStore({ memory: true });
    try {
      await store.migrate();
      const day0 = Date.parse('2026-01-10T00:00:00Z');
      const samples: Sample[] = [0, 1, 2, 3].map((d) => ({
        clusterId: 'c1',
        hostname: 'h1',
        gpuId: '0',
        uuid: 'GPU-r',
        device: 'nvidia0',
        modelName: 'H100',
        metric: 'DCGM_FI_DEV_GPU_UTIL',
        container: '',
        pod: '',
        namespace: '',
        labels: {},
        timestampMs: day0 + d * DAY + 12 * HOUR,
        value: d,
      }));
      await store.writeBatch(batch(samples, [], 'ret-1'));
      const days = () =>
        store.withSql('test', async (db) => {
          await db.query('SELECT nexus_flush_rollups()');
          const { rows } = await db.query<{ d: string }>(
            "SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d FROM samples_1d ORDER BY bucket",
          );
          return rows.map((r) => r.d);
        });
      expect(await days()).toEqual(['2026-01-10', '2026-01-11', '2026-01-12', '2026-01-13']);
      // Anchor: the end of the newest raw day (day 3 + 18 h here); cutoff = anchor - 1.5 days = day 2 + 6 h.
      await store.applyRetention({ rawMs: 0, rollupMs: DAY + 12 * HOUR, nowMs: day0 + 3 * DAY + 18 * HOUR });
      expect(await days()).toEqual(['2026-01-12', '2026-01-13']);
      const summary = await store.summarizeSeries({
        filter: {},
        startMs: day0 + 2 * DAY,
        endMs: day0 + 4 * DAY,
        resolution: '1h',
      });
      expect(summary.map((s) => [s.count, s.sum, s.min, s.max])).toEqual([[2, 5, 2, 3]]);
    } finally {
      await store.close();
    }
  });
});
