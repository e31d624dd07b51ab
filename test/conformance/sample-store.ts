/**
 * Conformance suite of the SampleStore port: one vitest `describe` block that every adapter
 * (PGlite in memory and on disk, PostgreSQL) must pass. Tests share one store per suite run and
 * stay independent by writing under their own cluster id and comparing sample counts before/after.
 * Rollup, resolution and retention cases use their own eras (1900s dates) where a partition drop
 * cannot touch another test's data.
 *
 * Entry point, called once per adapter from a runner file:
 *
 *     sampleStoreConformance(name: string, setup: SampleStoreSetup,
 *                            capabilities: SampleStoreCapabilities): void
 *
 * `capabilities` names every capability of {@link SAMPLE_STORE_CAPABILITIES}, each `true` or a
 * string saying why the store lacks it (see ./capabilities.ts); cases needing a missing one are
 * reported as skipped with that reason, and an unknown or missing name throws at once. One case
 * checks the declaration against what the store itself reports (`applyRetention`, `partitioning()`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../src/domain/batch-codec.js';
import type { Batch, DeadLetter, Sample, SeriesKey } from '../../src/domain/types.js';
import { NexusError } from '../../src/errors.js';
import type { SampleStore, StoredSample } from '../../src/ports/sample-store.js';
import { incompressible } from '../support/samples.js';
import { type Capabilities, declareCapabilities } from './capabilities.js';

/** Every capability a sample store runner declares. */
export const SAMPLE_STORE_CAPABILITIES = [
  /** `applyRetention()`: drops whole partitions (or chunks) older than the bounds. */
  'retention',
  /** 1m and 1h rollups (min/max/avg/count/last) kept with the raw samples; `resolution` queries. */
  'rollups',
  /** Native day partitions (`samples_pYYYYMMDD`, `samples_1m_p...`); `partitioning()` says `native`. */
  'partitions',
  /** TimescaleDB hypertables instead of native partitions; `partitioning()` says `timescaledb`. */
  'timescaledb',
  /** Several stores (processes) on one database write at once; the setup returns `connect`. */
  'concurrentWriters',
  /** `compact()`: raw samples older than the hot window kept denser, every answer unchanged. */
  'compaction',
  /** Any sample time in years 0001-9999 is stored (a TSDB keeps only its retention window). */
  'fullTimeRange',
  /** The database refuses a row too large to index (SQLSTATE 54000); the store isolates it. */
  'indexRowLimit',
] as const;

/** One capability of the sample store port. */
export type SampleStoreCapability = (typeof SAMPLE_STORE_CAPABILITIES)[number];

/** What a sample store runner declares: every {@link SampleStoreCapability}, `true` or why not. */
export type SampleStoreCapabilities = Capabilities<SampleStoreCapability>;

/** A store opened by a {@link SampleStoreSetup}. */
export interface SampleStoreHandle {
  store: SampleStore;
  teardown: () => Promise<void>;
  /**
   * Open another store on the same database, as a second process would (the suite migrates and
   * closes it). Required when the runner declares `concurrentWriters`.
   */
  connect?: () => Promise<SampleStore>;
}

/** What a suite run needs from an adapter: a fresh store and how to dispose of it. */
export type SampleStoreSetup = () => Promise<SampleStoreHandle>;

/** A store that reports how its sample tables are partitioned (the SQL stores do). */
type ReportsPartitioning = SampleStore & { partitioning(): Promise<string> };

let uniq = 0;
/** A name no other test (or suite run on the same database) uses. */
function unique(prefix: string): string {
  uniq += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniq}`;
}

const T0 = Date.parse('2025-07-18T20:42:34.000Z');

function seriesKey(clusterId: string, overrides: Partial<SeriesKey> = {}): SeriesKey {
  return {
    clusterId,
    hostname: 'host-a',
    gpuId: '0',
    uuid: `GPU-${clusterId}-a-0`,
    device: 'nvidia0',
    modelName: 'NVIDIA H100 80GB HBM3',
    metric: 'DCGM_FI_DEV_GPU_UTIL',
    container: '',
    pod: '',
    namespace: '',
    labels: {},
    ...overrides,
  };
}

function sample(key: SeriesKey, timestampMs: number, value: number): Sample {
  return { ...key, timestampMs, value };
}

function batch(samples: Sample[], deadLetters: DeadLetter[] = [], id = unique('batch')): Batch {
  return { id, source: 'conformance', samples, deadLetters };
}

/** `n` samples of one series, one per second from T0. */
function series(key: SeriesKey, n: number, start = T0, step = 1000): Sample[] {
  return Array.from({ length: n }, (_, i) => sample(key, start + i * step, i));
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Expected rollup buckets of samples (one series), oldest first. */
function expectedBuckets(samples: Sample[], bucketMs: number) {
  const buckets = new Map<number, Sample[]>();
  for (const s of samples) {
    const b = Math.floor(s.timestampMs / bucketMs) * bucketMs;
    buckets.set(b, [...(buckets.get(b) ?? []), s]);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([bucket, ss]) => {
      const values = ss.map((s) => s.value);
      const newest = ss.reduce((a, b) => (b.timestampMs >= a.timestampMs ? b : a));
      return {
        timestampMs: bucket,
        min: Math.min(...values),
        max: Math.max(...values),
        avg: values.reduce((a, b) => a + b, 0) / values.length,
        count: values.length,
        last: newest.value,
      };
    });
}

/** The bucket fields of rollup samples, for comparison with {@link expectedBuckets}. */
function bucketsOf(got: StoredSample[]) {
  return got.map((s) => {
    expect(s.aggregate, 'rollup samples carry an aggregate').toBeDefined();
    expect(s.value).toBeCloseTo(s.aggregate!.avg, 9);
    return { timestampMs: s.timestampMs, ...s.aggregate! };
  });
}

function closeTo(actual: ReturnType<typeof bucketsOf>, expected: ReturnType<typeof expectedBuckets>): void {
  expect(actual.map(({ avg: _a, ...rest }) => rest)).toEqual(expected.map(({ avg: _a, ...rest }) => rest));
  actual.forEach((a, i) => expect(a.avg).toBeCloseTo(expected[i]!.avg, 9));
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected rejection with ${code}`).toBeInstanceOf(NexusError);
  expect((error as NexusError).code).toBe(code);
}

/**
 * Register the SampleStore conformance tests for one adapter. `setup` is called once for the
 * shared store (and again by tests that need their own, e.g. close()); the suite calls
 * `migrate()` itself.
 * @param capabilities what the store can do (every {@link SampleStoreCapability}, `true` or why not)
 * @throws Error at once when `capabilities` names an unknown capability or leaves one out
 */
export function sampleStoreConformance(
  name: string,
  setup: SampleStoreSetup,
  capabilities: SampleStoreCapabilities,
): void {
  const cap = declareCapabilities('sample store', name, SAMPLE_STORE_CAPABILITIES, capabilities);
  describe(`SampleStore conformance: ${name}`, () => {
    let store: SampleStore;
    let teardown: (() => Promise<void>) | undefined;
    let connect: (() => Promise<SampleStore>) | undefined;

    beforeAll(async () => {
      ({ store, teardown, connect } = await setup());
      await store.migrate();
    });
    afterAll(async () => {
      await teardown?.();
    });

    it('declares what the store reports: retention <-> applyRetention, partitions / timescaledb <-> partitioning()', async () => {
      expect(typeof store.applyRetention === 'function', 'store implements applyRetention').toBe(
        cap.has('retention'),
      );
      const reporting = store as Partial<ReportsPartitioning>;
      const mode = typeof reporting.partitioning === 'function' ? await reporting.partitioning() : 'none';
      expect({ partitions: cap.has('partitions'), timescaledb: cap.has('timescaledb') }).toEqual({
        partitions: mode === 'native',
        timescaledb: mode === 'timescaledb',
      });
    });

    it('migrate() again is harmless and keeps the data', async () => {
      const c = unique('mig');
      await store.writeBatch(batch(series(seriesKey(c), 3)));
      await store.migrate();
      await store.migrate();
      expect(await store.querySamples({ gpu: { uuid: `GPU-${c}-a-0` } })).toHaveLength(3);
    });

    it('ping() resolves on a live store', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    cap.it('fullTimeRange', 'round-trips every field, labels and workload attribution included', async () => {
      const c = unique('rt');
      const key = seriesKey(c, {
        hostname: 'mtv5-dgx1-hgpu-031',
        gpuId: '7',
        uuid: `GPU-5fd4f087-${c}`,
        device: 'nvidia7',
        modelName: 'NVIDIA H100 80GB HBM3',
        metric: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE',
        container: 'trainer',
        pod: 'llm-train-0',
        namespace: 'research',
        labels: {
          DCGM_FI_DRIVER_VERSION: '535.129.03',
          quoted: 'say "hi", then {leave}',
          backslash: 'C:\\path\\',
          unicode: 'température ✓ 温度',
          empty: '',
          'key with spaces=and,commas': 'v',
        },
      });
      const written = [
        sample(key, -1, 5e-324), // before 1970 and 2000: negative offsets in the binary encoding
        sample(key, Date.parse('1999-12-31T23:59:59.999Z'), 0),
        sample(key, T0 + 123, 0.875),
        sample(key, T0 + 1_456, -12.5),
        sample(key, T0 + 2_000, 1e300),
        sample(key, Date.parse('2199-01-01T00:00:00.001Z'), 123456789.12345679),
      ];
      const r = await store.writeBatch(batch(written));
      expect(r).toEqual({ duplicate: false, inserted: 6, deadLetters: 0, unstorable: 0, conflicts: 0 });
      const got = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' });
      expect(got).toEqual(written);

      // The same kind of values through the conflict path (a batch overlapping stored samples).
      const shifted = written.map((s) => ({ ...s, timestampMs: s.timestampMs + 1 }));
      expect((await store.writeBatch(batch([written[0]!, ...shifted]))).inserted).toBe(6);
      const all = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' });
      expect(all).toEqual([...written, ...shifted].sort((a, b) => a.timestampMs - b.timestampMs));
    });

    it('stores unknown metric names as they come', async () => {
      const c = unique('unk');
      const key = seriesKey(c, { metric: 'DCGM_FI_SOMETHING_NEW_42' });
      await store.writeBatch(batch([sample(key, T0, 42)]));
      const got = await store.querySamples({ gpu: { uuid: key.uuid } });
      expect(got.map((s) => [s.metric, s.value])).toEqual([['DCGM_FI_SOMETHING_NEW_42', 42]]);
    });

    it('a duplicate batch id writes nothing and reports duplicate', async () => {
      const c = unique('dup');
      const b = batch(series(seriesKey(c), 5), [deadLetter(`${c}.csv`, 9)]);
      const before = await store.countSamples();
      expect(await store.writeBatch(b)).toEqual({
        duplicate: false,
        inserted: 5,
        deadLetters: 1,
        unstorable: 0,
        conflicts: 0,
      });
      expect(await store.countSamples()).toBe(before + 5);

      const replay = { ...b, samples: [...b.samples, sample(seriesKey(c), T0 + 99_000, 1)] };
      expect(await store.writeBatch(replay)).toEqual({
        duplicate: true,
        inserted: 0,
        deadLetters: 0,
        unstorable: 0,
        conflicts: 0,
      });
      expect(await store.countSamples()).toBe(before + 5);
      expect(await store.listDeadLetters({ source: `${c}.csv` })).toHaveLength(1);
    });

    it('the same samples under another batch id insert nothing', async () => {
      const c = unique('nat');
      const samples = series(seriesKey(c), 4);
      await store.writeBatch(batch(samples));
      const before = await store.countSamples();
      expect(await store.writeBatch(batch(samples))).toEqual({
        duplicate: false,
        inserted: 0,
        deadLetters: 0,
        unstorable: 0,
        conflicts: 0,
      });
      expect(await store.countSamples()).toBe(before);
    });

    it('a partly overlapping batch inserts only the new samples, keeping the stored values', async () => {
      const c = unique('ovl');
      const key = seriesKey(c);
      await store.writeBatch(batch([sample(key, T0, 1), sample(key, T0 + 1000, 2)]));
      const r = await store.writeBatch(
        batch([sample(key, T0 + 1000, 999), sample(key, T0 + 2_345, 3.25), sample(key, T0 + 3_001, 4)]),
      );
      // The stored 2 stays; the refused 999 is counted as a conflict.
      expect(r).toMatchObject({ inserted: 2, conflicts: 1, deadLetters: 1, refusedSamples: [0] });
      const got = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' });
      expect(got.map((s) => [s.timestampMs, s.value])).toEqual([
        [T0, 1],
        [T0 + 1000, 2],
        [T0 + 2_345, 3.25],
        [T0 + 3_001, 4],
      ]);
    });

    it('repeats of a natural key inside one batch are stored once', async () => {
      const c = unique('intra');
      const key = seriesKey(c);
      const r = await store.writeBatch(
        batch([sample(key, T0, 1), sample(key, T0, 1), sample(key, T0 + 1, 2)]),
      );
      expect(r.inserted).toBe(2);
      expect(await store.querySamples({ gpu: { uuid: key.uuid } })).toHaveLength(2);
    });

    it('the same label set in another key order is the same series', async () => {
      const c = unique('lbl');
      const a = seriesKey(c, { labels: { x: '1', y: '2' } });
      const b = seriesKey(c, { labels: { y: '2', x: '1' } });
      await store.writeBatch(batch([sample(a, T0, 1)]));
      expect((await store.writeBatch(batch([sample(b, T0, 1)]))).inserted).toBe(0);
    });

    it('different label sets on one GPU and metric are different series', async () => {
      const c = unique('lbl2');
      const a = seriesKey(c, { pod: 'job-1', labels: { pod: 'job-1' } });
      const b = seriesKey(c, { pod: 'job-2', labels: { pod: 'job-2' } });
      const r = await store.writeBatch(batch([sample(a, T0, 1), sample(b, T0, 2)]));
      expect(r.inserted).toBe(2);
      const got = await store.querySamples({ gpu: { uuid: a.uuid }, order: 'asc' });
      expect(got.map((s) => s.pod).sort()).toEqual(['job-1', 'job-2']);
    });

    it.each([
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
    ])(
      'a %s value becomes one unstorable_row dead letter; the rest of the batch is stored',
      async (label, bad) => {
        const c = unique('nonfinite');
        const key = seriesKey(c, { hostname: 'host-new' });
        const other = seriesKey(c, { metric: 'DCGM_FI_DEV_POWER_USAGE', hostname: 'host-new' });
        const good = [...series(key, 200), ...series(other, 200)];
        const before = await store.countSamples();
        const b = batch([...good.slice(0, 150), sample(other, T0 + 999_000, bad), ...good.slice(150)]);
        b.source = `${c}.csv`;
        expect(await store.writeBatch(b)).toEqual({
          duplicate: false,
          inserted: 400,
          deadLetters: 1,
          unstorable: 1,
          conflicts: 0,
          refusedSamples: [150],
        });
        expect(await store.countSamples()).toBe(before + 400);
        const [d, ...rest] = await store.listDeadLetters({ source: `${c}.csv` });
        expect(rest).toEqual([]);
        expect(d).toMatchObject({ line: 0, reason: 'unstorable_row' });
        expect(d!.detail).toContain(`batch ${b.id}, sample 150 of 401`);
        expect(d!.detail).toContain(`value ${label} is not finite`);
        // The sample reconstructed as a DCGM CSV row (samples do not carry their input line).
        const ts = new Date(T0 + 999_000).toISOString();
        expect(d!.raw).toBe(
          `${ts},DCGM_FI_DEV_POWER_USAGE,0,nvidia0,GPU-${c}-a-0,NVIDIA H100 80GB HBM3,host-new,,,,${label},`,
        );
      },
    );

    cap.it(
      'fullTimeRange',
      'a time outside years 0001-9999 becomes an unstorable_row dead letter; the rest is stored',
      async () => {
        const c = unique('badts');
        const src = `${c}.csv`;
        const beyond = Date.UTC(9999, 11, 31, 12) + DAY; // 10000-01-01, e.g. 9999-12-31 restamped
        const b = {
          ...batch([
            ...series(seriesKey(c), 3),
            sample(seriesKey(c), NaN, 1),
            sample(seriesKey(c), beyond, 2),
          ]),
          source: src,
        };
        const before = await store.countSamples();
        expect(await store.writeBatch(b)).toMatchObject({ inserted: 3, unstorable: 2, deadLetters: 2 });
        expect(await store.countSamples()).toBe(before + 3);
        const letters = await store.listDeadLetters({ source: src });
        expect(letters.map((d) => [d.reason, d.detail])).toEqual([
          [
            'unstorable_row',
            `batch ${b.id}, sample 4 of 5: timestamp ${beyond} ms is outside the years 0001-9999`,
          ],
          ['unstorable_row', `batch ${b.id}, sample 3 of 5: timestamp NaN ms is outside the years 0001-9999`],
        ]);
        // The last instant of 9999 is storable.
        const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
        expect((await store.writeBatch(batch([sample(seriesKey(c), last, 7)]))).inserted).toBe(1);
      },
    );

    cap.it(
      'indexRowLimit',
      'a row the database refuses (54000: index row too large) in the middle of a batch: the good rows are stored, one dead letter',
      async () => {
        const c = unique('poison');
        const src = `${c}.csv`;
        const key = seriesKey(c);
        const poisonKey = seriesKey(c, {
          hostname: incompressible(4000, 1),
          metric: incompressible(4000, 2),
        });
        const good = Array.from({ length: 999 }, (_, i) =>
          sample(seriesKey(c, { metric: `DCGM_FI_M_${i % 20}` }), T0 + i * 1000, i),
        );
        const b = {
          ...batch([...good.slice(0, 500), sample(poisonKey, T0, 1), ...good.slice(500)]),
          source: src,
        };
        const before = await store.countSamples();
        expect(await store.writeBatch(b)).toEqual({
          duplicate: false,
          inserted: 999,
          deadLetters: 1,
          unstorable: 1,
          conflicts: 0,
          refusedSamples: [500],
        });
        expect(await store.countSamples()).toBe(before + 999);
        const stored = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc', limit: 10_000 });
        expect(stored.map((s) => s.value)).toEqual(good.map((s) => s.value));
        expect(stored.map((s) => s.metric)).toEqual(good.map((s) => s.metric));
        expect((await store.listGpus(c)).map((g) => g.hostname)).toEqual(['host-a']);
        const letters = await store.listDeadLetters({ source: src });
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({ source: src, line: 0, reason: 'unstorable_row' });
        expect(letters[0]!.detail).toMatch(
          new RegExp(`^batch ${b.id}, sample 500 of 1000: .*index row size.*\\(SQLSTATE 54000\\)$`),
        );
        expect(letters[0]!.raw).toHaveLength(1000);
        expect(
          letters[0]!.raw.startsWith(`${new Date(T0).toISOString()},${poisonKey.metric.slice(0, 100)}`),
        ).toBe(true);

        // Redelivery of the split batch (same id) adds nothing: no sample, no dead letter.
        expect(await store.writeBatch(b)).toEqual({
          duplicate: true,
          inserted: 0,
          deadLetters: 0,
          unstorable: 0,
          conflicts: 0,
        });
        expect(await store.countSamples()).toBe(before + 999);
        expect(await store.listDeadLetters({ source: src })).toHaveLength(1);
        // The series cache holds nothing from the rolled-back first attempt: later batches of the
        // same series land on the stored series.
        expect((await store.writeBatch(batch([sample(key, T0 + 5_000_000, 5)]))).inserted).toBe(1);
        expect(await store.listGpus(c)).toHaveLength(1);
      },
    );

    cap.it(
      'indexRowLimit',
      'two different poison rows (and every sample of a refused series) are isolated; the rest is stored once',
      async () => {
        const c = unique('poison2');
        const src = `${c}.csv`;
        const key = seriesKey(c);
        const longHost = seriesKey(c, { hostname: incompressible(4000, 3), metric: incompressible(4000, 4) });
        const longLabels = seriesKey(c, { uuid: incompressible(3000, 5), device: incompressible(3000, 6) });
        const good = series(key, 2000);
        const samples = [...good];
        samples.splice(1500, 0, sample(longLabels, T0, 9));
        samples.splice(700, 0, sample(longHost, T0 + 1, 8), sample(longHost, T0 + 2, 8));
        samples.splice(10, 0, sample(longHost, T0 + 3, 8));
        const b = { ...batch(samples), source: src };
        const before = await store.countSamples();
        expect(await store.writeBatch(b)).toMatchObject({ inserted: 2000, unstorable: 4, deadLetters: 4 });
        expect(await store.countSamples()).toBe(before + 2000);
        const letters = await store.listDeadLetters({ source: src });
        const indexes = letters
          .map((d) => Number(/sample (\d+) of 2004/.exec(d.detail)?.[1]))
          .sort((x, y) => x - y);
        expect(indexes).toEqual([10, 701, 702, 1503]);
        expect(letters.every((d) => d.reason === 'unstorable_row' && d.line === 0)).toBe(true);
        expect(letters.every((d) => d.detail.includes('SQLSTATE 54000'))).toBe(true);
        expect((await store.querySamples({ gpu: { uuid: key.uuid }, limit: 10_000 })).length).toBe(2000);
        // The same rows again under a new batch id: nothing stored twice, the poison refused again.
        expect(await store.writeBatch(batch(samples))).toMatchObject({
          inserted: 0,
          unstorable: 4,
          conflicts: 0,
        });
        expect(await store.countSamples()).toBe(before + 2000);
      },
    );

    it('a conflicting duplicate inside one batch: the first value is kept, the loser is one dead letter', async () => {
      const c = unique('conf1');
      const src = `${c}.csv`;
      const key = seriesKey(c);
      const b = {
        ...batch([
          sample(key, T0, 1),
          sample(key, T0 + 1000, 2),
          sample(key, T0, 1), // identical repeat: a replay, silent
          sample(key, T0, 5), // same key, other value: refused
          sample(key, T0 + 2000, 3),
        ]),
        source: src,
      };
      expect(await store.writeBatch(b)).toEqual({
        duplicate: false,
        inserted: 3,
        deadLetters: 1,
        unstorable: 0,
        conflicts: 1,
        refusedSamples: [3],
      });
      const got = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' });
      expect(got.map((s) => [s.timestampMs, s.value])).toEqual([
        [T0, 1],
        [T0 + 1000, 2],
        [T0 + 2000, 3],
      ]);
      const letters = await store.listDeadLetters({ source: src });
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ line: 0, reason: 'conflicting_duplicate' });
      expect(letters[0]!.detail).toBe(
        `batch ${b.id}, sample 3 of 5: stored value 1, refused value 5 for ${key.metric} of ${key.uuid} ` +
          `(host-a) at ${new Date(T0).toISOString()}`,
      );
    });

    cap.it(
      'rollups',
      'rollups count only the stored samples of a batch with conflicting duplicates',
      async () => {
        const c = unique('conf1r');
        const key = seriesKey(c);
        const b = batch([
          sample(key, T0, 1),
          sample(key, T0 + 1000, 2),
          sample(key, T0, 1),
          sample(key, T0, 5),
          sample(key, T0 + 2000, 3),
        ]);
        expect(await store.writeBatch(b)).toMatchObject({ inserted: 3, conflicts: 1 });
        const [m] = await store.querySamples({ gpu: { uuid: key.uuid }, resolution: '1m' });
        expect(m!.aggregate).toMatchObject({ count: 3, min: 1, max: 3 });
      },
    );

    it('a conflicting duplicate across batches is counted and dead-lettered; identical replays stay silent', async () => {
      const c = unique('conf2');
      const src = `${c}.csv`;
      const key = seriesKey(c);
      const first = series(key, 10);
      await store.writeBatch({ ...batch(first), source: src });
      // Identical replay under another id: silent.
      expect(await store.writeBatch({ ...batch(first), source: src })).toMatchObject({
        inserted: 0,
        conflicts: 0,
        deadLetters: 0,
      });
      const changed = first.map((s, i) => (i === 4 || i === 7 ? { ...s, value: s.value + 0.5 } : s));
      const b = { ...batch([...changed, sample(key, T0 + 60_000, 60)]), source: src };
      expect(await store.writeBatch(b)).toEqual({
        duplicate: false,
        inserted: 1,
        deadLetters: 2,
        unstorable: 0,
        conflicts: 2,
        refusedSamples: [4, 7],
      });
      const letters = await store.listDeadLetters({ source: src });
      expect(letters.map((d) => [d.reason, d.detail.replace(/ for .*/, '')]).sort()).toEqual([
        ['conflicting_duplicate', `batch ${b.id}, sample 4 of 11: stored value 4, refused value 4.5`],
        ['conflicting_duplicate', `batch ${b.id}, sample 7 of 11: stored value 7, refused value 7.5`],
      ]);
      const got = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc', limit: 100 });
      expect(got.map((s) => s.value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 60]);
      // Redelivery of the same batch id: the ledger stops it, no second pair of dead letters.
      expect(await store.writeBatch(b)).toMatchObject({ duplicate: true, conflicts: 0 });
      expect(await store.listDeadLetters({ source: src })).toHaveLength(2);
    });

    it('a batch as a collector gets it (decoded from its queue payload) is stored and refused as the batch itself', async () => {
      const c = unique('wire');
      const src = `${c}.csv`;
      const util = seriesKey(c);
      const power = seriesKey(c, { metric: 'DCGM_FI_DEV_POWER_USAGE', labels: { job: 'a' } });
      const other = seriesKey(c, { gpuId: '1', uuid: `GPU-${c}-a-1` });
      await store.writeBatch({ ...batch(series(util, 3)), source: src });
      const samples = [
        sample(power, T0, 10),
        sample(util, T0, 0), // replay of a stored sample: silent
        sample(other, T0, 20),
        sample(util, T0 + 1000, 9), // stored value 1: refused
        sample(power, T0 + 1000, NaN), // unstorable
        sample(other, T0 + 1000, 21),
        sample(power, T0, 11), // conflicts with the first sample of the batch
        sample(util, T0 + 5000, 5),
      ];
      const written = { ...batch(samples), source: src };
      const decoded = decodeBatch(encodeBatch(written));
      expect(decoded.samples).toEqual(samples);
      expect(await store.writeBatch(decodeBatch(encodeBatch(written)))).toEqual({
        duplicate: false,
        inserted: 4,
        deadLetters: 3,
        unstorable: 1,
        conflicts: 2,
        refusedSamples: [3, 4, 6],
      });
      const letters = await store.listDeadLetters({ source: src });
      expect(letters.map((d) => [d.reason, d.detail.replace(/ for .*/, '')]).sort()).toEqual([
        ['conflicting_duplicate', `batch ${written.id}, sample 3 of 8: stored value 1, refused value 9`],
        ['conflicting_duplicate', `batch ${written.id}, sample 6 of 8: stored value 10, refused value 11`],
        ['unstorable_row', `batch ${written.id}, sample 4 of 8: value NaN is not finite`],
      ]);
      const got = [
        ...(await store.querySamples({ gpu: { uuid: util.uuid }, order: 'asc', limit: 100 })),
        ...(await store.querySamples({ gpu: { uuid: other.uuid }, order: 'asc', limit: 100 })),
      ];
      expect(got.map((s) => [s.uuid, s.metric, s.timestampMs - T0, s.value]).sort()).toEqual(
        [
          [util.uuid, util.metric, 0, 0],
          [util.uuid, util.metric, 1000, 1],
          [util.uuid, util.metric, 2000, 2],
          [util.uuid, util.metric, 5000, 5],
          [power.uuid, power.metric, 0, 10],
          [other.uuid, other.metric, 0, 20],
          [other.uuid, other.metric, 1000, 21],
        ].sort(),
      );
      // Its redelivery is a duplicate, as the batch's own would be.
      expect(await store.writeBatch(decodeBatch(encodeBatch(written)))).toMatchObject({ duplicate: true });
    });

    it('time bounds are inclusive at both ends', async () => {
      const c = unique('range');
      const key = seriesKey(c);
      await store.writeBatch(batch(series(key, 10)));
      const got = await store.querySamples({
        gpu: { uuid: key.uuid },
        startMs: T0 + 2000,
        endMs: T0 + 5000,
        order: 'asc',
      });
      expect(got.map((s) => s.timestampMs)).toEqual([T0 + 2000, T0 + 3000, T0 + 4000, T0 + 5000]);
      const open = await store.querySamples({ gpu: { uuid: key.uuid }, startMs: T0 + 8000 });
      expect(open.map((s) => s.timestampMs)).toEqual([T0 + 9000, T0 + 8000]);
      const upTo = await store.querySamples({ gpu: { uuid: key.uuid }, endMs: T0 + 1000 });
      expect(upTo.map((s) => s.timestampMs)).toEqual([T0 + 1000, T0]);
      const empty = await store.querySamples({
        gpu: { uuid: key.uuid },
        startMs: T0 + 1001,
        endMs: T0 + 1999,
      });
      expect(empty).toEqual([]);
    });

    it('filters by metric', async () => {
      const c = unique('metric');
      const metrics = ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE'];
      const samples = metrics.flatMap((metric, m) =>
        series(seriesKey(c, { metric }), 3).map((s) => ({ ...s, value: m * 10 + s.value })),
      );
      await store.writeBatch(batch(samples));
      const gpu = { uuid: `GPU-${c}-a-0` };
      const one = await store.querySamples({ gpu, metrics: ['DCGM_FI_DEV_GPU_TEMP'] });
      expect(one.map((s) => s.metric)).toEqual(Array(3).fill('DCGM_FI_DEV_GPU_TEMP'));
      expect(one.map((s) => s.value)).toEqual([12, 11, 10]);
      const two = await store.querySamples({
        gpu,
        metrics: ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_POWER_USAGE'],
      });
      expect(new Set(two.map((s) => s.metric))).toEqual(
        new Set(['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_POWER_USAGE']),
      );
      expect(two).toHaveLength(6);
      expect(await store.querySamples({ gpu, metrics: ['DCGM_FI_NOT_THERE'] })).toEqual([]);
      expect(await store.querySamples({ gpu, metrics: [] })).toHaveLength(9);
    });

    it('orders newest first by default, oldest first with order asc, and applies limit after ordering', async () => {
      const c = unique('order');
      const key = seriesKey(c);
      // Written out of order on purpose.
      const shuffled = [5, 1, 9, 3, 7, 0, 2, 8, 4, 6].map((i) => sample(key, T0 + i * 1000, i));
      await store.writeBatch(batch(shuffled));
      const gpu = { uuid: key.uuid };
      const desc = await store.querySamples({ gpu });
      expect(desc.map((s) => s.value)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      const asc = await store.querySamples({ gpu, order: 'asc' });
      expect(asc.map((s) => s.value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect((await store.querySamples({ gpu, limit: 3 })).map((s) => s.value)).toEqual([9, 8, 7]);
      expect((await store.querySamples({ gpu, limit: 3, order: 'asc' })).map((s) => s.value)).toEqual([
        0, 1, 2,
      ]);
      expect(await store.querySamples({ gpu, limit: 0 })).toEqual([]);
    });

    it('orders samples that share a timestamp deterministically', async () => {
      const c = unique('ties');
      const metrics = ['M_C', 'M_A', 'M_B'];
      await store.writeBatch(batch(metrics.map((metric) => sample(seriesKey(c, { metric }), T0, 1))));
      const gpu = { uuid: `GPU-${c}-a-0` };
      expect((await store.querySamples({ gpu, order: 'asc' })).map((s) => s.metric)).toEqual([
        'M_A',
        'M_B',
        'M_C',
      ]);
      expect((await store.querySamples({ gpu })).map((s) => s.metric)).toEqual(['M_C', 'M_B', 'M_A']);
    });

    it('returns at most 1000 samples when no limit is given', async () => {
      const c = unique('deflimit');
      const key = seriesKey(c);
      await store.writeBatch(batch(series(key, 1_200)));
      const got = await store.querySamples({ gpu: { uuid: key.uuid } });
      expect(got).toHaveLength(1000);
      expect(got[0]?.timestampMs).toBe(T0 + 1_199_000);
    });

    it('selects by uuid or by cluster + host + index, never mixing hosts or clusters', async () => {
      const c = unique('sel');
      const c2 = unique('sel-other');
      const a0 = seriesKey(c, { hostname: 'host-a', gpuId: '0', uuid: `GPU-${c}-A0` });
      const b0 = seriesKey(c, { hostname: 'host-b', gpuId: '0', uuid: `GPU-${c}-B0` });
      const a1 = seriesKey(c, { hostname: 'host-a', gpuId: '1', uuid: `GPU-${c}-A1`, device: 'nvidia1' });
      const otherCluster = seriesKey(c2, { hostname: 'host-a', gpuId: '0', uuid: `GPU-${c2}-A0` });
      await store.writeBatch(
        batch([
          ...series(a0, 3).map((s) => ({ ...s, value: 100 + s.value })),
          ...series(b0, 3).map((s) => ({ ...s, value: 200 + s.value })),
          ...series(a1, 3).map((s) => ({ ...s, value: 300 + s.value })),
          ...series(otherCluster, 3).map((s) => ({ ...s, value: 400 + s.value })),
        ]),
      );
      const byHost = await store.querySamples({
        gpu: { clusterId: c, hostname: 'host-b', gpuId: '0' },
        order: 'asc',
      });
      expect(byHost.map((s) => s.value)).toEqual([200, 201, 202]);
      expect(new Set(byHost.map((s) => s.uuid))).toEqual(new Set([b0.uuid]));
      const byHostA = await store.querySamples({ gpu: { clusterId: c, hostname: 'host-a', gpuId: '0' } });
      expect(byHostA.map((s) => s.value)).toEqual([102, 101, 100]);
      const byUuid = await store.querySamples({ gpu: { uuid: a1.uuid }, order: 'asc' });
      expect(byUuid.map((s) => s.value)).toEqual([300, 301, 302]);
      expect(await store.querySamples({ gpu: { clusterId: c, hostname: 'host-c', gpuId: '0' } })).toEqual([]);
      expect(await store.querySamples({ gpu: { uuid: 'GPU-does-not-exist' } })).toEqual([]);
    });

    it('lists GPUs per cluster, ordered by host then numeric index', async () => {
      const c = unique('gpus');
      const keys = ['10', '2', '0'].flatMap((gpuId) =>
        ['host-b', 'host-a'].map((hostname) =>
          seriesKey(c, { hostname, gpuId, uuid: `GPU-${hostname}-${gpuId}-${c}`, device: `nvidia${gpuId}` }),
        ),
      );
      const withSecondMetric = keys.map((k) => ({ ...k, metric: 'DCGM_FI_DEV_GPU_TEMP' }));
      await store.writeBatch(batch([...keys, ...withSecondMetric].map((k) => sample(k, T0, 1))));
      const gpus = await store.listGpus(c);
      expect(gpus.map((g) => `${g.hostname}/${g.gpuId}`)).toEqual([
        'host-a/0',
        'host-a/2',
        'host-a/10',
        'host-b/0',
        'host-b/2',
        'host-b/10',
      ]);
      expect(gpus[0]).toEqual({
        clusterId: c,
        hostname: 'host-a',
        gpuId: '0',
        uuid: `GPU-host-a-0-${c}`,
        device: 'nvidia0',
        modelName: 'NVIDIA H100 80GB HBM3',
      });
      expect(await store.listGpus(unique('no-such-cluster'))).toEqual([]);
      const all = await store.listGpus();
      expect(all.filter((g) => g.clusterId === c)).toEqual(gpus);
    });

    it('returns the newest sample of every series, per cluster', async () => {
      const c = unique('latest');
      const util = seriesKey(c);
      const temp = seriesKey(c, { metric: 'DCGM_FI_DEV_GPU_TEMP' });
      const other = seriesKey(c, { hostname: 'host-b', uuid: `GPU-${c}-b-0` });
      await store.writeBatch(
        batch([...series(util, 5), ...series(temp, 3, T0 + 60_000), ...series(other, 1)]),
      );
      const latest = await store.latestSamples(c);
      expect(latest.map((s) => [s.hostname, s.metric, s.timestampMs, s.value])).toEqual([
        ['host-a', 'DCGM_FI_DEV_GPU_TEMP', T0 + 62_000, 2],
        ['host-a', 'DCGM_FI_DEV_GPU_UTIL', T0 + 4000, 4],
        ['host-b', 'DCGM_FI_DEV_GPU_UTIL', T0, 0],
      ]);
      expect(await store.latestSamples(unique('empty'))).toEqual([]);
      expect((await store.latestSamples()).filter((s) => s.clusterId === c)).toHaveLength(3);
    });

    it('stores dead letters and lists them newest first, by source, with a limit', async () => {
      const src = `${unique('dl')}.csv`;
      const first = [deadLetter(src, 2, 'column_count'), deadLetter(src, 5, 'non_finite_value')];
      const r1 = await store.writeBatch(batch([], first));
      expect(r1).toEqual({ duplicate: false, inserted: 0, deadLetters: 2, unstorable: 0, conflicts: 0 });
      await store.writeBatch(batch([], [deadLetter(src, 11, 'bad_utf8')]));
      await store.writeBatch(batch([], [deadLetter(`${src}.other`, 1, 'x')]));

      const listed = await store.listDeadLetters({ source: src });
      expect(listed.map((d) => d.line)).toEqual([11, 5, 2]);
      expect(listed[2]).toMatchObject({
        source: src,
        line: 2,
        raw: `"raw",line,2`,
        reason: 'column_count',
        detail: 'detail of line 2',
      });
      for (const d of listed) {
        expect(Number.isInteger(d.id)).toBe(true);
        expect(Math.abs(d.receivedAtMs - Date.now())).toBeLessThan(10 * 60_000);
      }
      expect(listed[0]!.id).toBeGreaterThan(listed[1]!.id);
      expect((await store.listDeadLetters({ source: src, limit: 2 })).map((d) => d.line)).toEqual([11, 5]);
      const newest = await store.listDeadLetters({ limit: 1 });
      expect(newest.map((d) => d.source)).toEqual([`${src}.other`]);
    });

    it('a dead letter replayed in another batch (a rerun batched differently) is stored once', async () => {
      const src = `${unique('replay')}.csv`;
      const r1 = await store.writeBatch(batch([], [deadLetter(src, 7, 'non_finite_value')]));
      expect(r1.deadLetters).toBe(1);
      // Same source, line, reason and text under another batch id: already known, nothing added.
      const r2 = await store.writeBatch(
        batch([], [deadLetter(src, 7, 'non_finite_value'), deadLetter(src, 8, 'non_finite_value')]),
      );
      expect(r2.deadLetters).toBe(1);
      // The same line with other text (the file changed) is a new dead letter.
      await store.writeBatch(batch([], [{ ...deadLetter(src, 7, 'non_finite_value'), raw: 'changed' }]));
      const listed = await store.listDeadLetters({ source: src });
      expect(listed.map((d) => [d.line, d.raw])).toEqual([
        [7, 'changed'],
        [8, `"raw",line,8`],
        [7, `"raw",line,7`],
      ]);
    });

    it('keeps dead letters whose raw text carries a NUL byte', async () => {
      const src = `${unique('nul')}.csv`;
      await store.writeBatch(batch([], [{ ...deadLetter(src, 1), raw: 'a\0b' }]));
      const [d] = await store.listDeadLetters({ source: src });
      expect(d?.raw).toBe('a\uFFFDb');
    });

    it('writes a batch larger than one COPY chunk', async () => {
      const c = unique('big');
      const metrics = Array.from({ length: 12 }, (_, i) => `DCGM_FI_BIG_${i}`);
      const samples = metrics.flatMap((metric) => series(seriesKey(c, { metric }), 5_000));
      const before = await store.countSamples();
      expect((await store.writeBatch(batch(samples))).inserted).toBe(60_000);
      expect(await store.countSamples()).toBe(before + 60_000);
      // A replay under another id goes through the conflict path and adds nothing.
      expect((await store.writeBatch(batch(samples))).inserted).toBe(0);
    });

    it('handles concurrent writes, including the same batch twice at once', async () => {
      const c = unique('conc');
      const batches = Array.from({ length: 6 }, (_, i) =>
        batch(series(seriesKey(c, { metric: `M_${i % 3}` }), 50, T0 + i * 100_000)),
      );
      const twice = batches[0]!;
      const before = await store.countSamples();
      const results = await Promise.all([...batches, twice].map((b) => store.writeBatch(b)));
      expect(results.filter((r) => r.duplicate)).toHaveLength(1);
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(300);
      expect(await store.countSamples()).toBe(before + 300);
    });

    cap.it(
      ['rollups', 'fullTimeRange'],
      'keeps 1m and 1h rollups (min, max, avg, count, last) of what it stores',
      async () => {
        const c = unique('roll');
        const key = seriesKey(c);
        const start = Date.parse('1901-03-04T10:58:30.000Z');
        // Every 7 s for 2.5 hours: buckets cut across minutes and hours, values go up and down.
        const samples = Array.from({ length: 1300 }, (_, i) =>
          sample(key, start + i * 7_000, Math.round(50 + 40 * Math.sin(i / 9)) + i / 1000),
        );
        // Written in two batches out of time order, so buckets are merged across batches.
        await store.writeBatch(batch(samples.slice(700)));
        await store.writeBatch(batch(samples.slice(0, 700)));
        const gpu = { uuid: key.uuid };

        const minutes = await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 10_000 });
        closeTo(bucketsOf(minutes), expectedBuckets(samples, MINUTE));
        expect(minutes.every((s) => s.metric === key.metric && s.hostname === key.hostname)).toBe(true);
        const hours = await store.querySamples({ gpu, resolution: '1h', order: 'asc' });
        closeTo(bucketsOf(hours), expectedBuckets(samples, HOUR));
        expect(hours.map((h) => new Date(h.timestampMs).toISOString())).toEqual([
          '1901-03-04T10:00:00.000Z',
          '1901-03-04T11:00:00.000Z',
          '1901-03-04T12:00:00.000Z',
          '1901-03-04T13:00:00.000Z',
        ]);
        expect(hours.reduce((n, h) => n + h.aggregate!.count, 0)).toBe(1300);

        // Raw queries are unchanged and carry no aggregate.
        const raw = await store.querySamples({ gpu, limit: 3 });
        expect(raw.map((s) => s.aggregate)).toEqual([undefined, undefined, undefined]);
        expect(raw.map((s) => s.value)).toEqual(
          samples
            .slice(-3)
            .reverse()
            .map((s) => s.value),
        );
      },
    );

    cap.it(
      'rollups',
      'rollup sums past the float8 range saturate to +/-Infinity, in one write and across writes',
      async () => {
        const t = Date.parse('2026-10-02T03:04:00.000Z');
        const big = 1.5e308;
        // One batch: two huge samples in one minute (their sum overflows while folding), beside an
        // ordinary series whose sums must stay exact.
        const one = seriesKey(unique('sat1'));
        const plain = seriesKey(unique('sat2'));
        await store.writeBatch(
          batch([
            sample(one, t, big),
            sample(one, t + 10_000, big),
            sample(plain, t, 0.1),
            sample(plain, t + 10_000, 0.2),
          ]),
        );
        // Across writes with a read between (the second write merges into a stored bucket).
        const across = seriesKey(unique('sat3'));
        await store.writeBatch(batch([sample(across, t, -big)]));
        expect(
          (await store.querySamples({ gpu: { uuid: across.uuid }, resolution: '1m' }))[0]?.aggregate?.avg,
        ).toBe(-big);
        await store.writeBatch(batch([sample(across, t + 10_000, -big)]));
        const minute = async (uuid: string, resolution: '1m' | '1h') =>
          (await store.querySamples({ gpu: { uuid }, resolution }))[0]?.aggregate;
        for (const resolution of ['1m', '1h'] as const) {
          expect(await minute(one.uuid, resolution)).toMatchObject({
            avg: Infinity,
            count: 2,
            min: big,
            max: big,
          });
          expect(await minute(across.uuid, resolution)).toMatchObject({
            avg: -Infinity,
            count: 2,
            min: -big,
            max: -big,
          });
          expect(await minute(plain.uuid, resolution)).toMatchObject({
            avg: (0.1 + 0.2) / 2,
            count: 2,
            last: 0.2,
          });
        }
      },
    );

    cap.it(
      ['rollups', 'fullTimeRange'],
      'rollup queries honour bounds (start rounded down to its bucket), order, limit and metrics',
      async () => {
        const c = unique('rollq');
        const util = seriesKey(c);
        const temp = seriesKey(c, { metric: 'DCGM_FI_DEV_GPU_TEMP' });
        const start = Date.parse('1902-01-01T00:00:00.000Z');
        const samples = [util, temp].flatMap((k, m) =>
          Array.from({ length: 120 }, (_, i) => sample(k, start + i * 30_000, m * 100 + i)),
        );
        await store.writeBatch(batch(samples));
        const gpu = { uuid: util.uuid };
        const all = await store.querySamples({ gpu, resolution: '1m', limit: 1000 });
        expect(all).toHaveLength(120); // 60 minutes x 2 metrics
        // Newest first, ties on bucket ordered by metric descending (as raw samples are).
        expect(all.slice(0, 2).map((s) => [s.timestampMs, s.metric])).toEqual([
          [start + 59 * MINUTE, 'DCGM_FI_DEV_GPU_UTIL'],
          [start + 59 * MINUTE, 'DCGM_FI_DEV_GPU_TEMP'],
        ]);
        const window = await store.querySamples({
          gpu,
          resolution: '1m',
          metrics: ['DCGM_FI_DEV_GPU_TEMP'],
          startMs: start + 10 * MINUTE + 45_000, // inside the 10th minute: that bucket is included
          endMs: start + 12 * MINUTE,
          order: 'asc',
        });
        expect(
          window.map((s) => [s.timestampMs, s.aggregate!.min, s.aggregate!.max, s.aggregate!.count]),
        ).toEqual([
          [start + 10 * MINUTE, 120, 121, 2],
          [start + 11 * MINUTE, 122, 123, 2],
          [start + 12 * MINUTE, 124, 125, 2],
        ]);
        const two = await store.querySamples({ gpu, resolution: '1h', limit: 1, order: 'desc' });
        expect(two.map((s) => [s.metric, s.aggregate!.count, s.aggregate!.last])).toEqual([
          ['DCGM_FI_DEV_GPU_UTIL', 120, 119],
        ]);
        expect(await store.querySamples({ gpu, resolution: '1m', limit: 0 })).toEqual([]);
      },
    );

    cap.it(
      ['rollups', 'fullTimeRange'],
      'replays add nothing to the rollups, and last follows the newest sample time',
      async () => {
        const c = unique('rollrep');
        const key = seriesKey(c);
        const start = Date.parse('1903-05-06T07:08:00.000Z');
        const first = [sample(key, start + 10_000, 5), sample(key, start + 40_000, 7)];
        const b = batch(first);
        await store.writeBatch(b);
        await store.writeBatch(b); // same batch id: ledger
        await store.writeBatch(batch(first)); // same samples, new id: natural key
        // Overlapping batch: one old sample (different value, ignored), one earlier new, one later new.
        const r = await store.writeBatch(
          batch([
            sample(key, start + 40_000, 1000),
            sample(key, start + 5_000, -3),
            sample(key, start + 50_000, 9),
          ]),
        );
        expect(r.inserted).toBe(2);
        // An earlier sample arriving last must not replace `last`.
        await store.writeBatch(batch([sample(key, start + 1_000, 100)]));
        const [m] = await store.querySamples({ gpu: { uuid: key.uuid }, resolution: '1m' });
        expect(m!.timestampMs).toBe(start);
        expect(m!.aggregate).toEqual({
          min: -3,
          max: 100,
          avg: (5 + 7 - 3 + 9 + 100) / 5,
          count: 5,
          last: 9,
        });
        const [h] = await store.querySamples({ gpu: { uuid: key.uuid }, resolution: '1h' });
        expect(h!.aggregate).toMatchObject({ count: 5, last: 9, min: -3, max: 100 });
      },
    );

    cap.it(
      ['rollups', 'fullTimeRange'],
      'resolution auto: raw up to 6 h, 1m up to 7 days, 1h beyond, raw without a start',
      async () => {
        const c = unique('auto');
        const key = seriesKey(c);
        const start = Date.parse('1904-02-01T00:00:00.000Z');
        // One sample every 10 minutes for 10 days.
        const samples = Array.from({ length: 1440 }, (_, i) => sample(key, start + i * 600_000, i % 50));
        await store.writeBatch(batch(samples));
        const gpu = { uuid: key.uuid };
        const q = (span: number, extra: object = {}) =>
          store.querySamples({
            gpu,
            resolution: 'auto',
            startMs: start,
            endMs: start + span,
            limit: 10_000,
            ...extra,
          });
        const sixHours = await q(6 * HOUR);
        expect(sixHours).toHaveLength(37);
        expect(sixHours.every((s) => s.aggregate === undefined)).toBe(true);
        const oneDay = await q(DAY);
        expect(oneDay).toHaveLength(145);
        expect(oneDay.every((s) => s.aggregate?.count === 1)).toBe(true); // 1m buckets
        const week = await q(7 * DAY);
        expect(week.every((s) => s.aggregate !== undefined && s.timestampMs % MINUTE === 0)).toBe(true);
        const tenDays = await q(10 * DAY);
        expect(tenDays).toHaveLength(240); // 1h buckets of 6 samples
        expect(tenDays.every((s) => s.aggregate?.count === 6)).toBe(true);
        const noStart = await store.querySamples({ gpu, resolution: 'auto', limit: 5 });
        expect(noStart.every((s) => s.aggregate === undefined)).toBe(true);
        expect(noStart[0]!.timestampMs).toBe(samples.at(-1)!.timestampMs);
      },
    );

    cap.it(
      ['retention', 'partitions', 'rollups'],
      'applyRetention drops whole day partitions older than the bounds, rollups kept longer',
      async () => {
        expect(store.applyRetention, 'the runner declares retention').toBeDefined();
        const c = unique('ret');
        const key = seriesKey(c);
        const day0 = Date.parse('1900-01-01T00:00:00.000Z');
        // Two samples a day (09:00 and 21:30) for 20 days.
        const samples = Array.from({ length: 20 }, (_, d) => [
          sample(key, day0 + d * DAY + 9 * HOUR, d),
          sample(key, day0 + d * DAY + 21.5 * HOUR, d + 0.5),
        ]).flat();
        await store.writeBatch(batch(samples));
        const gpu = { uuid: key.uuid };
        const before = await store.countSamples();
        const nowMs = day0 + 19 * DAY + 12 * HOUR; // 1900-01-20T12:00Z
        const result = await store.applyRetention!({ rawMs: 7 * DAY, rollupMs: 14 * DAY, nowMs });
        // Raw: days wholly before 1900-01-13T12:00 go (01-01..01-12); rollups: before 01-06T12:00.
        const rawDropped = result.dropped.filter((n) => /^samples_p1900/.test(n)).sort();
        expect(rawDropped).toEqual(
          Array.from({ length: 12 }, (_, d) => `samples_p190001${String(d + 1).padStart(2, '0')}`),
        );
        expect(result.dropped.filter((n) => /^samples_1m_p1900/.test(n))).toHaveLength(5);
        expect(result.dropped.filter((n) => /^samples_1h_p1900/.test(n))).toHaveLength(5);
        expect(await store.countSamples()).toBe(before - 24);
        const raw = await store.querySamples({ gpu, order: 'asc', limit: 100 });
        expect(raw[0]!.timestampMs).toBe(day0 + 12 * DAY + 9 * HOUR);
        expect(raw).toHaveLength(16);
        const hours = await store.querySamples({ gpu, resolution: '1h', order: 'asc', limit: 100 });
        expect(hours[0]!.timestampMs).toBe(day0 + 5 * DAY + 9 * HOUR);
        expect(hours).toHaveLength(30);
        // The 1-minute buckets of the raw days that went stay, as the hours do.
        const minutes = await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 100 });
        expect(minutes.map((m) => [m.timestampMs, m.value, m.aggregate?.count])).toEqual(
          samples.slice(10).map((x) => [x.timestampMs, x.value, 1]),
        );

        // Idempotent, and 0 keeps everything.
        expect((await store.applyRetention!({ rawMs: 7 * DAY, rollupMs: 14 * DAY, nowMs })).dropped).toEqual(
          [],
        );
        expect(
          (await store.applyRetention!({ rawMs: 0, rollupMs: 0, nowMs: nowMs + 100 * DAY })).dropped,
        ).toEqual([]);
        expect(await store.countSamples()).toBe(before - 24);

        // A late replay of a dropped day is stored again (its partition comes back).
        const late = sample(key, day0 + 2 * DAY + HOUR, 42);
        expect((await store.writeBatch(batch([late]))).inserted).toBe(1);
        const back = await store.querySamples({ gpu, startMs: day0 + 2 * DAY, endMs: day0 + 3 * DAY });
        expect(back.map((s) => s.value)).toEqual([42]);
      },
    );

    cap.it(
      ['retention', 'timescaledb'],
      'applyRetention drops whole TimescaleDB chunks older than the bound',
      async () => {
        const c = unique('tsret');
        const key = seriesKey(c);
        const day0 = Date.parse('1900-02-01T00:00:00.000Z');
        const samples = Array.from({ length: 20 }, (_, d) => sample(key, day0 + d * DAY + 9 * HOUR, d));
        await store.writeBatch(batch(samples));
        const nowMs = day0 + 19 * DAY + 12 * HOUR;
        // Raw bound 7 days: chunks (1 day) wholly before 1900-02-13T12:00 go; rollups are kept.
        const result = await store.applyRetention!({ rawMs: 7 * DAY, rollupMs: 0, nowMs });
        expect(result.dropped.length).toBeGreaterThanOrEqual(12);
        const raw = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc', limit: 100 });
        expect(raw.map((s) => s.value)).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
      },
    );

    cap.it(
      ['concurrentWriters', 'rollups'],
      'several stores on one database write overlapping batches at once: each sample and batch id stored once',
      async () => {
        expect(
          connect,
          'the runner declares concurrentWriters: its setup must return `connect`',
        ).toBeDefined();
        const others = await Promise.all([connect!(), connect!()]);
        try {
          await Promise.all(others.map((o) => o.migrate()));
          const writers = [store, ...others];
          const c = unique('writers');
          const key = seriesKey(c);
          // 9 batches of 40 samples, one every 20 s: each overlaps the next by half, identically.
          const at = (i: number): Sample => sample(key, T0 + i * 1000, i);
          const batches = Array.from({ length: 9 }, (_, b) =>
            batch(Array.from({ length: 40 }, (_, i) => at(b * 20 + i))),
          );
          const before = await store.countSamples();
          const results = await Promise.all([
            ...batches.map((b, i) => writers[i % writers.length]!.writeBatch(b)),
            // The same batch ids again from another store, as a redelivery to another collector.
            writers[1]!.writeBatch(batches[0]!),
            writers[2]!.writeBatch(batches[4]!),
          ]);
          expect(results.filter((r) => r.duplicate)).toHaveLength(2);
          expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(200);
          expect(results.reduce((n, r) => n + r.conflicts + r.unstorable, 0)).toBe(0);
          expect(await store.countSamples()).toBe(before + 200);
          const got = await others[0]!.querySamples({ gpu: { uuid: key.uuid }, order: 'asc', limit: 1000 });
          expect(got.map((s) => s.value)).toEqual(Array.from({ length: 200 }, (_, i) => i));
          const hours = await others[1]!.querySamples({
            gpu: { uuid: key.uuid },
            resolution: '1h',
            limit: 10,
          });
          expect(hours.reduce((n, h) => n + h.aggregate!.count, 0)).toBe(200);
        } finally {
          await Promise.all(others.map((o) => o.close()));
        }
      },
    );

    cap.it(
      ['concurrentWriters', 'compaction'],
      'compaction passes from two stores while a third writes into the same days: every sample stored once',
      async () => {
        const others = await Promise.all([connect!(), connect!()]);
        try {
          await Promise.all(others.map((o) => o.migrate()));
          const c = unique('cmpw');
          const key = seriesKey(c);
          // Two days of 1830 in 60 batches of 100 samples (every 5 minutes), written one after the
          // other while two stores compact over and over with a hot window that has long passed:
          // windows are rebuilt, made dirty again and day partitions dropped under the writer.
          const day0 = Date.parse('1830-06-01T00:00:00.000Z');
          const all = Array.from({ length: 6000 }, (_, i) =>
            sample(key, day0 + ((i * 37) % 6000) * 30_000, i),
          );
          const before = await store.countSamples();
          let writing = true;
          const compactor = async (s: SampleStore): Promise<number> => {
            let passes = 0;
            while (writing) {
              await s.compact!({ hotMs: HOUR, nowMs: day0 + 4 * DAY });
              passes += 1;
            }
            return passes;
          };
          const passes = Promise.all(others.map(compactor));
          let inserted = 0;
          try {
            for (let b = 0; b < 60; b++)
              inserted += (await store.writeBatch(batch(all.slice(b * 100, b * 100 + 100)))).inserted;
          } finally {
            writing = false;
          }
          expect((await passes).every((n) => n > 0)).toBe(true);
          expect(inserted).toBe(6000);
          await others[0]!.compact!({ hotMs: HOUR, nowMs: day0 + 4 * DAY });
          expect(await store.countSamples()).toBe(before + 6000);
          const got = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc', limit: 10_000 });
          expect(got).toHaveLength(6000);
          expect(new Set(got.map((g) => g.timestampMs)).size).toBe(6000);
          expect(got.map((g) => g.value).sort((a, b) => a - b)).toEqual(all.map((a) => a.value));
          // Replayed under new ids after all that: nothing more is stored.
          const replay = await store.writeBatch(batch(all.slice(0, 500)));
          expect(replay.inserted).toBe(0);
        } finally {
          await Promise.all(others.map((o) => o.close()));
        }
      },
    );

    it('after close(), every method rejects with STORE_CLOSED', async () => {
      const own = await setup();
      try {
        await own.store.migrate();
        await own.store.close();
        await own.store.close(); // idempotent
        const c = unique('closed');
        await expectCode(own.store.migrate(), 'STORE_CLOSED');
        await expectCode(own.store.writeBatch(batch(series(seriesKey(c), 1))), 'STORE_CLOSED');
        await expectCode(own.store.querySamples({ gpu: { uuid: 'x' } }), 'STORE_CLOSED');
        await expectCode(own.store.listGpus(), 'STORE_CLOSED');
        await expectCode(own.store.listDeadLetters(), 'STORE_CLOSED');
        await expectCode(own.store.countSamples(), 'STORE_CLOSED');
        await expectCode(own.store.ping(), 'STORE_CLOSED');
      } finally {
        await own.teardown();
      }
    });

    cap.it(
      ['compaction', 'retention'],
      'compact() changes no answer: reads, replays and conflicts refused, late samples, retention of compacted days',
      async () => {
        expect(store.compact, 'the runner declares compaction').toBeDefined();
        const c = unique('cmp');
        const util = seriesKey(c);
        const power = seriesKey(c, { metric: 'DCGM_FI_DEV_POWER_USAGE', labels: { job: 'train' } });
        const day0 = Date.parse('1850-03-01T00:00:00.000Z');
        // 36 hours at 30 s: utilization with ms jitter (scrape timing), power on the dot with a gap
        // of 100 scrapes and fractional values; one more window holds a single sample.
        const samples: Sample[] = [];
        for (let i = 0; i < 36 * 120; i++) {
          samples.push(sample(util, day0 + i * 30_000 + ((i * 7919) % 37), 40 + (i % 13)));
          if (i < 1000 || i >= 1100)
            samples.push(sample(power, day0 + i * 30_000, 200 + i * 0.125 - (i % 7) / 3));
        }
        samples.push(sample(util, day0 - DAY + 5 * HOUR, 7));
        for (let i = 0; i < samples.length; i += 997)
          await store.writeBatch(batch(samples.slice(i, i + 997)));
        const gpu = { uuid: util.uuid };
        const answers = async () => ({
          all: await store.querySamples({ gpu, order: 'asc', limit: 20_000 }),
          slice: await store.querySamples({
            gpu,
            startMs: day0 + 5 * HOUR + 123,
            endMs: day0 + 7 * HOUR - 5,
            limit: 50,
          }),
          newest: await store.querySamples({ gpu, limit: 3 }),
          oldestOfPower: await store.querySamples({ gpu, metrics: [power.metric], order: 'asc', limit: 2 }),
          latest: (await store.latestSamples()).filter((s) => s.clusterId === c),
          selected: await store.selectSeries({
            filter: { clusterId: c },
            startMs: day0 + 3 * HOUR,
            endMs: day0 + 20 * HOUR,
          }),
          latestInWindow: await store.selectSeries({
            filter: { clusterId: c },
            startMs: day0,
            endMs: day0 + 8 * HOUR + 1,
            latestOnly: true,
          }),
          // Sums to 12 digits: a float sum depends on the order the database adds in.
          summary: (
            await store.summarizeSeries?.({
              filter: { clusterId: c },
              startMs: day0 + 61_000,
              endMs: day0 + 30 * HOUR + 7_000,
              resolution: 'raw',
            })
          )?.map((s) => ({ ...s, sum: Number(s.sum.toPrecision(12)) })),
          spacing: await store.sampleSpacing?.({
            filter: { clusterId: c },
            startMs: day0,
            endMs: day0 + 12 * HOUR,
            instanceLabel: 'GPU_I_ID',
          }),
          hours: await store.querySamples({ gpu, resolution: '1h', order: 'asc', limit: 100 }),
          minutes: await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 20_000 }),
          minuteSlice: await store.querySamples({
            gpu,
            resolution: '1m',
            startMs: day0 + 5 * HOUR + 59_123,
            endMs: day0 + 6 * HOUR + 30_000,
            order: 'desc',
            limit: 100,
          }),
          minuteSummary: (
            await store.summarizeSeries?.({
              filter: { clusterId: c },
              startMs: day0 + 2 * HOUR + 60_000,
              endMs: day0 + 29 * HOUR,
              resolution: '1m',
            })
          )?.map((s) => ({ ...s, sum: Number(s.sum.toPrecision(12)) })),
        });
        const before = await answers();
        expect(before.all).toHaveLength(samples.length);
        const count = await store.countSamples();

        // Hot window 2 h at 1850-03-02T15:00: windows ending by 12:00 on 03-02 are compacted.
        const nowMs = day0 + 39 * HOUR;
        const progress: number[] = [];
        const result = await store.compact!({
          hotMs: 2 * HOUR,
          nowMs,
          onWindow: (w) => progress.push(w.startMs),
        });
        expect(result.windows).toBeGreaterThanOrEqual(7);
        expect(result.samples).toBeGreaterThanOrEqual(samples.length);
        expect(progress).toContain(day0 + 30 * HOUR);
        expect(progress).toContain(day0 - DAY);
        expect(result.droppedPartitions).toEqual(
          expect.arrayContaining(['samples_p18500228', 'samples_p18500301']),
        );
        expect(await store.countSamples()).toBe(count);
        expect(await answers()).toEqual(before);
        // Idempotent: nothing left to rebuild in these windows.
        expect((await store.compact!({ hotMs: 2 * HOUR, nowMs })).windows).toBe(0);

        // A replay under another batch id stores nothing; a different value is refused and kept out.
        const replay = await store.writeBatch(batch(samples.slice(2000, 2400)));
        expect(replay).toMatchObject({ duplicate: false, inserted: 0, conflicts: 0 });
        const changed = { ...samples[2001]!, value: 99.5 };
        const conflict = await store.writeBatch(batch([changed]));
        expect(conflict).toMatchObject({ inserted: 0, conflicts: 1, refusedSamples: [0] });
        // A late sample inside the power gap of a compacted window is stored, once.
        const late = sample(power, day0 + 1050 * 30_000, 1234.5);
        expect((await store.writeBatch(batch([late]))).inserted).toBe(1);
        expect((await store.writeBatch(batch([late]))).inserted).toBe(0);
        const withLate = (await answers()).all;
        expect(withLate).toHaveLength(samples.length + 1);
        expect(
          withLate.find((s) => s.timestampMs === late.timestampMs && s.metric === power.metric)?.value,
        ).toBe(1234.5);
        expect(
          withLate.find((s) => s.timestampMs === changed.timestampMs && s.metric === changed.metric)?.value,
        ).toBe(samples[2001]!.value);
        // The next pass rebuilds the window the late sample made dirty, and only that one.
        const lateMinute = (await answers()).minutes.find(
          (s) =>
            s.timestampMs === Math.floor(late.timestampMs / 60_000) * 60_000 && s.metric === power.metric,
        );
        expect(lateMinute?.aggregate).toMatchObject({ count: 1, min: 1234.5, max: 1234.5, last: 1234.5 });
        const again = await store.compact!({ hotMs: 2 * HOUR, nowMs });
        expect(again.windows).toBe(1);
        const afterLate = await answers();
        expect(afterLate.all).toEqual(withLate);
        expect(afterLate.minutes).toHaveLength(before.minutes.length + 1);
        expect(afterLate.minutes).toEqual(expect.arrayContaining([lateMinute]));
        expect(await store.countSamples()).toBe(count + 1);

        // Retention counts compacted samples as data: a raw bound of 1 day keeps 1850-03-01T15:00 on
        // (measured from now, 1850-03-02T15:00), so the windows before 12:00 go.
        await store.applyRetention!({ rawMs: DAY, rollupMs: 0, nowMs });
        const kept = await store.querySamples({ gpu, order: 'asc', limit: 20_000 });
        expect(kept[0]!.timestampMs).toBe(day0 + 12 * HOUR);
        expect(kept).toHaveLength(withLate.filter((s) => s.timestampMs >= day0 + 12 * HOUR).length);
        // The same bound on the rollups takes the compacted 1-minute buckets of those windows too.
        await store.applyRetention!({ rawMs: DAY, rollupMs: DAY, nowMs });
        const minutesKept = await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 20_000 });
        expect(minutesKept[0]!.timestampMs).toBe(day0 + 12 * HOUR);
        expect(minutesKept).toEqual(afterLate.minutes.filter((s) => s.timestampMs >= day0 + 12 * HOUR));
      },
    );

    cap.it('retention', 'after close(), applyRetention rejects with STORE_CLOSED', async () => {
      const own = await setup();
      try {
        await own.store.migrate();
        await own.store.close();
        await expectCode(own.store.applyRetention!({ rawMs: 1, rollupMs: 1 }), 'STORE_CLOSED');
      } finally {
        await own.teardown();
      }
    });

    it('close() waits for a write in flight', async () => {
      const own = await setup();
      try {
        await own.store.migrate();
        const c = unique('inflight');
        const write = own.store.writeBatch(batch(series(seriesKey(c), 500)));
        await own.store.close();
        await expect(write).resolves.toMatchObject({ inserted: 500 });
      } finally {
        await own.teardown();
      }
    });

    describe('selectSeries (PromQL reads)', () => {
      // Three series of one cluster: GPU 0 and 1 utilisation, GPU 0 temperature (pod "p1").
      let c: string;
      let util0: SeriesKey;
      let util1: SeriesKey;
      let temp0: SeriesKey;
      beforeAll(async () => {
        c = unique('sel');
        util0 = seriesKey(c, { labels: { gpu: '0', DCGM_FI_DRIVER_VERSION: '535' } });
        util1 = seriesKey(c, { gpuId: '1', uuid: `GPU-${c}-a-1`, device: 'nvidia1' });
        temp0 = seriesKey(c, { metric: 'DCGM_FI_DEV_GPU_TEMP', pod: 'p1', namespace: 'ns' });
        await store.writeBatch(
          batch([...series(util0, 5), ...series(util1, 5, T0, 2000), ...series(temp0, 3, T0 + 500)]),
        );
      });
      const window = { startMs: T0, endMs: T0 + 60_000 };
      const ids = async (filter: Parameters<SampleStore['selectSeries']>[0]['filter']) =>
        (await store.selectSeries({ filter: { clusterId: c, ...filter }, ...window })).map(
          (s) => `${s.series.metric}/${s.series.gpuId}`,
        );

      it('filters on metric names, a metric prefix and the indexed columns', async () => {
        expect((await ids({})).sort()).toEqual([
          'DCGM_FI_DEV_GPU_TEMP/0',
          'DCGM_FI_DEV_GPU_UTIL/0',
          'DCGM_FI_DEV_GPU_UTIL/1',
        ]);
        expect(await ids({ metrics: ['DCGM_FI_DEV_GPU_TEMP'] })).toEqual(['DCGM_FI_DEV_GPU_TEMP/0']);
        expect(await ids({ metrics: [] })).toEqual([]);
        expect((await ids({ metricPrefix: 'DCGM_FI_DEV_GPU_U' })).sort()).toEqual([
          'DCGM_FI_DEV_GPU_UTIL/0',
          'DCGM_FI_DEV_GPU_UTIL/1',
        ]);
        // LIKE wildcards in a prefix are literal.
        expect(await ids({ metricPrefix: 'DCGM%' })).toEqual([]);
        expect(
          await ids({ gpuId: '1', uuid: `GPU-${c}-a-1`, hostname: 'host-a', device: 'nvidia1' }),
        ).toEqual(['DCGM_FI_DEV_GPU_UTIL/1']);
        expect(await ids({ pod: 'p1', namespace: 'ns', container: '' })).toEqual(['DCGM_FI_DEV_GPU_TEMP/0']);
        expect(await ids({ modelName: 'other' })).toEqual([]);
        // Extra labels: a value, or '' for "without the label", beside the columns of one GPU.
        expect(await ids({ labels: { DCGM_FI_DRIVER_VERSION: '535' } })).toEqual(['DCGM_FI_DEV_GPU_UTIL/0']);
        expect((await ids({ labels: { DCGM_FI_DRIVER_VERSION: '' } })).sort()).toEqual([
          'DCGM_FI_DEV_GPU_TEMP/0',
          'DCGM_FI_DEV_GPU_UTIL/1',
        ]);
        expect(await ids({ hostname: 'host-a', gpuId: '0', labels: { DCGM_FI_DRIVER_VERSION: '' } })).toEqual(
          ['DCGM_FI_DEV_GPU_TEMP/0'],
        );
        expect(await ids({ uuid: `GPU-${c}-a-0`, labels: { DCGM_FI_DRIVER_VERSION: '536' } })).toEqual([]);
        // A name every JavaScript object answers to is still just a label no series has.
        expect(await ids({ labels: { constructor: '', toString: '' } })).toHaveLength(3);
        expect(await ids({ labels: { constructor: 'x' } })).toEqual([]);
      });

      it('returns each series once with its samples in the window, ascending, and its identity', async () => {
        const got = await store.selectSeries({
          filter: { clusterId: c, metrics: ['DCGM_FI_DEV_GPU_UTIL'] },
          startMs: T0 + 1000,
          endMs: T0 + 4000,
        });
        expect(got.map((s) => s.series.id)).toEqual(got.map((s) => s.series.id).sort((a, b) => a - b));
        got.sort((a, b) => a.series.gpuId.localeCompare(b.series.gpuId));
        expect(got.map((s) => s.series.gpuId)).toEqual(['0', '1']);
        expect(got[0]!.timestamps).toEqual([T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]);
        expect(got[0]!.values).toEqual([1, 2, 3, 4]);
        expect(got[1]!.timestamps).toEqual([T0 + 2000, T0 + 4000]);
        expect(got[1]!.values).toEqual([1, 2]);
        const { id, ...identity } = got[0]!.series;
        expect(typeof id).toBe('number');
        expect(identity).toEqual(util0);
      });

      it('leaves out series without a sample in the window, and those `accept` refuses', async () => {
        expect(await ids({})).toHaveLength(3);
        const late = await store.selectSeries({
          filter: { clusterId: c },
          startMs: T0 + 4500,
          endMs: T0 + 9000,
        });
        expect(late.map((s) => `${s.series.metric}/${s.series.gpuId}`).sort()).toEqual([
          'DCGM_FI_DEV_GPU_UTIL/1', // its last sample is at T0 + 8 s
        ]);
        const accepted = await store.selectSeries({
          filter: { clusterId: c },
          accept: (s) => s.labels.DCGM_FI_DRIVER_VERSION === '535',
          ...window,
        });
        expect(accepted.map((s) => s.series.gpuId)).toEqual(['0']);
        expect(accepted[0]!.series.metric).toBe('DCGM_FI_DEV_GPU_UTIL');
      });

      it('latestOnly: the newest sample of each series within the window', async () => {
        const got = await store.selectSeries({
          filter: { clusterId: c },
          startMs: T0,
          endMs: T0 + 3000,
          latestOnly: true,
        });
        const newest = Object.fromEntries(
          got.map((s) => [`${s.series.metric}/${s.series.gpuId}`, [s.timestamps, s.values]]),
        );
        expect(newest).toEqual({
          'DCGM_FI_DEV_GPU_UTIL/0': [[T0 + 3000], [3]],
          'DCGM_FI_DEV_GPU_UTIL/1': [[T0 + 2000], [1]],
          'DCGM_FI_DEV_GPU_TEMP/0': [[T0 + 2500], [2]],
        });
      });

      cap.it(
        'fullTimeRange',
        'times to the microsecond and values bit for bit, in narrow and wide windows',
        async () => {
          const cx = unique('selus');
          const key = seriesKey(cx);
          const written = [
            sample(key, -1, 5e-324),
            sample(key, Date.parse('1999-12-31T23:59:59.999Z'), -0.1),
            sample(key, T0 + 0.001, 0.1),
            sample(key, T0 + 123.456, 1e300),
            sample(key, T0 + 999.999, -12.5),
            sample(key, T0 + 60_000.5, 1 / 3),
            sample(key, Date.parse('2199-01-01T00:00:00.001Z') + 0.999, 123456789.12345679),
            // Past 2^33 s (relative times would be inexact) and past 2^53 microseconds since 1970.
            sample(key, Date.parse('2250-06-01T00:00:00.001Z') + 0.999, 7),
            sample(key, Date.parse('2260-01-01T00:00:00.123Z') + 0.456, 8),
          ];
          await store.writeBatch(batch(written));
          const pairs = (samples: readonly Sample[]) => samples.map((x) => [x.timestampMs, x.value]);
          const read = async (startMs: number, endMs: number) =>
            (await store.selectSeries({ filter: { clusterId: cx }, startMs, endMs })).flatMap((x) =>
              x.timestamps.map((t, i) => [t, x.values[i]]),
            );
          // What querySamples answers is what was written, to the microsecond.
          expect(pairs(await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' }))).toEqual(
            pairs(written),
          );
          // A window wider than 2^31 seconds, one starting between milliseconds, and narrow ones.
          expect(await read(-1000, Date.parse('2261-01-01T00:00:00Z'))).toEqual(pairs(written));
          expect(await read(-0.5, T0 + 70_000)).toEqual(pairs(written.slice(1, 6)));
          for (const x of written) {
            expect(await read(Math.floor(x.timestampMs) - 1, Math.ceil(x.timestampMs) + 1)).toEqual(
              pairs([x]),
            );
          }
          expect(await read(Date.parse('1999-12-31T00:00:00Z'), T0 + 1_000)).toEqual(
            pairs(written.slice(1, 5)),
          );
        },
      );

      it('maxSamples: at the bound it answers, beyond it rejects with READ_BUDGET_EXCEEDED', async () => {
        const select = (maxSamples: number) =>
          store.selectSeries({ filter: { clusterId: c }, ...window, maxSamples });
        const all = await select(13);
        expect(all.reduce((n, s) => n + s.timestamps.length, 0)).toBe(13);
        await expectCode(select(12), 'READ_BUDGET_EXCEEDED');
      });

      it('summarizeSeries (when the store has it): rollup totals equal to the raw samples', async () => {
        if (store.summarizeSeries === undefined) return; // optional: stores without rollups lack it
        const startMs = Math.floor(T0 / 60_000) * 60_000;
        const endMs = startMs + 120_000;
        for (const resolution of ['1m', '1h'] as const) {
          const from = resolution === '1h' ? Math.floor(T0 / 3_600_000) * 3_600_000 : startMs;
          const to = resolution === '1h' ? from + 3_600_000 : endMs;
          const raw = await store.selectSeries({ filter: { clusterId: c }, startMs: from, endMs: to - 1 });
          const want = Object.fromEntries(
            raw.map((s) => [
              s.series.id,
              {
                count: s.values.length,
                sum: s.values.reduce((a, b) => a + b, 0),
                min: Math.min(...s.values),
                max: Math.max(...s.values),
              },
            ]),
          );
          const got = await store.summarizeSeries({
            filter: { clusterId: c },
            startMs: from,
            endMs: to,
            resolution,
          });
          expect(got).toHaveLength(3);
          expect(
            Object.fromEntries(
              got.map((r) => [r.series.id, { count: r.count, sum: r.sum, min: r.min, max: r.max }]),
            ),
          ).toEqual(want);
          const filtered = await store.summarizeSeries({
            filter: { clusterId: c, metrics: ['DCGM_FI_DEV_GPU_TEMP'] },
            startMs: from,
            endMs: to,
            resolution,
          });
          expect(filtered.map((r) => r.series.metric)).toEqual(['DCGM_FI_DEV_GPU_TEMP']);
        }
      });

      it('summarizeSeries over whole days and raw windows, and sampleSpacing (when the store has them)', async () => {
        if (store.summarizeSeries === undefined) return; // optional: stores without rollups lack it
        const cd = unique('days');
        const key = seriesKey(cd);
        const d0 = Math.floor(T0 / DAY) * DAY;
        const samples = series(key, 150, d0 + 5 * MINUTE, 37 * MINUTE); // about 3.85 days
        await store.writeBatch(batch(samples));
        const check = async (from: number, to: number, resolution: 'raw' | '1h') => {
          const v = samples.filter((s) => s.timestampMs >= from && s.timestampMs < to).map((s) => s.value);
          const got = await store.summarizeSeries!({
            filter: { clusterId: cd },
            startMs: from,
            endMs: to,
            resolution,
          });
          expect(got.map((r) => [r.count, r.sum, r.min, r.max])).toEqual([
            [v.length, v.reduce((a, b) => a + b, 0), Math.min(...v), Math.max(...v)],
          ]);
        };
        await check(d0, d0 + 3 * DAY, '1h'); // whole days
        await check(d0 + 5 * HOUR, d0 + 2 * DAY + 7 * HOUR, '1h'); // hours either side of a day
        await check(d0 + 5 * HOUR + 3 * MINUTE + 17_000, d0 + DAY + 9 * HOUR + 11_000, 'raw');
        if (store.sampleSpacing === undefined) return;
        const select = {
          filter: { clusterId: cd },
          startMs: d0,
          endMs: d0 + 3 * DAY,
          instanceLabel: 'GPU_I_ID',
        };
        const n = samples.filter((s) => s.timestampMs < d0 + 3 * DAY).length;
        const gpu = { clusterId: cd, hostname: 'host-a', gpuId: '0', instance: '' };
        expect(await store.sampleSpacing(select)).toEqual([{ ...gpu, timestamps: n, medianMs: 37 * MINUTE }]);
        expect(await store.sampleSpacing({ ...select, exclude: [gpu] })).toEqual([]);
      });

      it('an aborted signal rejects before reading', async () => {
        const controller = new AbortController();
        controller.abort();
        const error = await store
          .selectSeries({ filter: { clusterId: c }, ...window }, controller.signal)
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
      });
    });

    it('every sample store capability gates at least one case', () => {
      cap.assertAllUsed();
    });
  });
}

function deadLetter(source: string, line: number, reason = 'column_count'): DeadLetter {
  return { source, line, raw: `"raw",line,${line}`, reason, detail: `detail of line ${line}` };
}
