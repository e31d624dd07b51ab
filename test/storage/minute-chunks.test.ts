/**
 * 1-minute rollups of compacted windows (migration 7, src/storage/minute-chunks.ts), on PGlite:
 * compaction drops their rows (and emptied day partitions) and every 1-minute read, for random
 * bounds, answers the same from the raw chunks; raw retention stores them as `rollup_chunks_1m`
 * (a fraction of the rows' bytes) with the same answers (the slice arithmetic of
 * `nexus_minute_chunk_rows` included); late samples into either kind of window are merged once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import type { SeriesSummary } from '../../src/ports/sample-store.js';
import { applyMigrations, MIGRATIONS } from '../../src/storage/migrations.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import type { SqlSampleStore } from '../../src/storage/sql-sample-store.js';
import { batch, sample } from '../support/samples.js';

const HOUR = 3_600_000;
const DAY = 24 * 3_600_000;
const DAY0 = Date.parse('1960-05-01T00:00:00Z');

/** Deterministic pseudo-random numbers in [0, 1). */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x ^ (x >>> 15), 2_246_822_519) + 0x9e3779b9) >>> 0;
    return x / 2 ** 32;
  };
}

describe('1-minute rollups as chunks (PGlite)', () => {
  let store: SqlSampleStore;
  const rand = prng(7);
  const gpu = { uuid: 'GPU-minute-chunks' };
  const key = (metric: string): Partial<Sample> => ({
    clusterId: 'mc',
    uuid: gpu.uuid,
    metric,
  });
  const samples: Sample[] = [];
  const sql = <T>(text: string): Promise<T[]> =>
    store.withSql('test', async (db) => (await db.query<T & Record<string, unknown>>(text)).rows as T[]);

  beforeAll(async () => {
    store = (await createPgliteSampleStore({ memory: true })) as SqlSampleStore;
    await store.migrate();
    // 30 hours: power every 20 s with jitter and decimals, temperature every 45 s with a 40-minute
    // gap (minutes without a bucket inside a chunk), and one sample alone in the last minute.
    let p = 300;
    for (let t = 0; t < 30 * HOUR; t += 20_000) {
      p = Math.min(700, Math.max(60, p + (rand() - 0.5) * 40));
      samples.push(
        sample({
          ...key('DCGM_FI_DEV_POWER_USAGE'),
          timestampMs: DAY0 + t + Math.floor(rand() * 900),
          value: Math.round(p * 1000) / 1000,
        }),
      );
    }
    for (let t = 0; t < 30 * HOUR; t += 45_000) {
      if (t > 7 * HOUR && t < 7 * HOUR + 40 * 60_000) continue;
      samples.push(
        sample({
          ...key('DCGM_FI_DEV_GPU_TEMP'),
          timestampMs: DAY0 + t,
          value: 40 + Math.floor(rand() * 30),
        }),
      );
    }
    samples.push(sample({ ...key('DCGM_FI_DEV_GPU_TEMP'), timestampMs: DAY0 + 30 * HOUR - 1, value: 99 }));
    // At most one sample a minute (read without aggregating): every 90 s with jitter; and every
    // 55 s with jitter, often two samples in one minute (aggregated).
    for (let t = 0; t < 30 * HOUR; t += 90_000)
      samples.push(
        sample({
          ...key('DCGM_FI_DEV_XID_ERRORS'),
          timestampMs: DAY0 + t + Math.floor(rand() * 900),
          value: Math.floor(rand() * 3),
        }),
      );
    for (let t = 0; t < 30 * HOUR; t += 55_000)
      samples.push(
        sample({
          ...key('DCGM_FI_DEV_SM_CLOCK'),
          timestampMs: DAY0 + t + Math.floor(rand() * 900),
          value: 1000 + Math.floor(rand() * 980),
        }),
      );
    for (let i = 0; i < samples.length; i += 2000) await store.writeBatch(batch(samples.slice(i, i + 2000)));
  }, 120_000);

  afterAll(async () => {
    await store?.close();
  });

  const bounds = [
    ...Array.from({ length: 40 }, () => {
      const a = DAY0 - HOUR + Math.floor(rand() * 32 * HOUR);
      const b = a + Math.floor(rand() * (rand() < 0.5 ? 20 * 60_000 : 9 * HOUR));
      return [a, b] as const;
    }),
    // Ending on a window's first minute, whose first samples come after the bound.
    [DAY0 + 5 * HOUR, DAY0 + 6 * HOUR],
    [DAY0 + 6 * HOUR, DAY0 + 6 * HOUR],
    [DAY0 + 12 * HOUR - 60_000, DAY0 + 12 * HOUR + 1],
  ] as const;
  const round = (l: SeriesSummary[]) => l.map((s) => ({ ...s, sum: Number(s.sum.toPrecision(12)) }));
  /** Every 1-minute answer: the whole series, 40 random ranges, their summaries. */
  const minuteAnswers = async () => ({
    all: await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 10_000 }),
    ranges: await Promise.all(
      bounds.map(([startMs, endMs], i: number) =>
        store.querySamples({
          gpu,
          resolution: '1m',
          startMs,
          endMs,
          order: i % 2 ? 'asc' : 'desc',
          limit: 10_000,
        }),
      ),
    ),
    summaries: await Promise.all(
      bounds.map(async ([startMs, endMs]) =>
        round(await store.summarizeSeries({ filter: { clusterId: 'mc' }, startMs, endMs, resolution: '1m' })),
      ),
    ),
  });
  const rawSummaries = () =>
    Promise.all(
      bounds.map(async ([startMs, endMs]) =>
        round(
          await store.summarizeSeries({ filter: { clusterId: 'mc' }, startMs, endMs, resolution: 'raw' }),
        ),
      ),
    );
  const counts = async () =>
    (
      await sql<{ rows: number; chunks: number; buckets: number; bytes: number; raw: number }>(
        `SELECT (SELECT count(*) FROM samples_1m)::float8 AS rows, count(*)::float8 AS chunks,
                coalesce(sum(n), 0)::float8 AS buckets, coalesce(sum(pg_column_size(c.*)), 0)::float8 AS bytes,
                (SELECT count(*) FROM sample_chunks)::float8 AS raw
         FROM rollup_chunks_1m c`,
      )
    )[0]!;
  let before: Awaited<ReturnType<typeof minuteAnswers>>;
  let rowsBefore: { n: number; bytes: number };
  const lateMinute = DAY0 + 7 * HOUR + 10 * 60_000; // inside the temperature gap
  const busyMinute = DAY0 + 3 * HOUR + 5 * 60_000; // a power minute with 3 samples
  const atMinute = async (startMs: number, metric: string) =>
    (await store.querySamples({ gpu, resolution: '1m', startMs, endMs: startMs, limit: 10 })).find(
      (s) => s.metric === metric,
    );

  it('compaction drops the 1-minute rows of its windows: readers compute them from the raw chunks, same answers', async () => {
    before = await minuteAnswers();
    const raw = await rawSummaries();
    // 30 h of power at 20 s: 1,800 minutes with 3 samples each; temperature fills most minutes.
    expect(before.all.filter((s) => s.metric === 'DCGM_FI_DEV_POWER_USAGE')).toHaveLength(1800);
    expect(before.ranges.some((r) => r.length > 100)).toBe(true);
    rowsBefore = (
      await sql<{ n: number; bytes: number }>(
        `SELECT count(*)::float8 AS n, sum(pg_column_size(m.*))::float8 AS bytes FROM ${ALL_MINUTE_BUCKETS} m`,
      )
    )[0]!;

    const result = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 40 * HOUR });
    expect(result.windows).toBe(6); // 4 + 2 of the second day (the second one empty)
    expect(result.droppedPartitions).toEqual(['samples_p19600501', 'samples_1m_p19600501']);
    // 4 series x 5 windows of raw chunks; no 1-minute row or chunk left.
    expect(await counts()).toMatchObject({ rows: 0, chunks: 0, raw: 20 });
    const parts = await sql<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'samples_1m'::regclass ORDER BY 1`,
    );
    expect(parts.map((p) => p.name)).not.toContain('samples_1m_p19600501');
    expect(await minuteAnswers()).toEqual(before);
    expect(await rawSummaries()).toEqual(raw);
  });

  it('a late sample into a compacted window: rows computed back, merged, dropped again by the next pass', async () => {
    const power = await atMinute(busyMinute, 'DCGM_FI_DEV_POWER_USAGE');
    expect(power?.aggregate?.count).toBe(3);
    const late = [
      sample({ ...key('DCGM_FI_DEV_GPU_TEMP'), timestampMs: lateMinute + 5_000, value: 12.5 }),
      sample({ ...key('DCGM_FI_DEV_POWER_USAGE'), timestampMs: busyMinute + 59_999, value: 10_000 }),
    ];
    expect((await store.writeBatch(batch(late))).inserted).toBe(2);
    const check = async () => {
      expect((await atMinute(lateMinute, 'DCGM_FI_DEV_GPU_TEMP'))?.aggregate).toMatchObject({
        count: 1,
        min: 12.5,
        max: 12.5,
        last: 12.5,
      });
      expect((await atMinute(busyMinute, 'DCGM_FI_DEV_POWER_USAGE'))?.aggregate).toMatchObject({
        count: 4,
        max: 10_000,
        last: 10_000,
        min: power!.aggregate!.min,
      });
    };
    await check();
    // The two chunks the late samples fell in came back as rows, with their buckets.
    const back = await counts();
    expect(back).toMatchObject({ chunks: 0, raw: 18 });
    expect(back.rows).toBeGreaterThan(600);
    const again = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 40 * HOUR });
    expect(again.windows).toBe(2); // the two windows the late samples made dirty
    expect(await counts()).toMatchObject({ rows: 0, chunks: 0, raw: 20 });
    await check();
    before = await minuteAnswers();
    expect(before.all).toHaveLength(rowsBefore.n + 1);
  });

  it('raw retention stores the buckets of the expiring chunks as 1-minute chunks, a fraction of the rows', async () => {
    await store.applyRetention({ rawMs: HOUR, rollupMs: 0, nowMs: DAY0 + 40 * HOUR });
    const after = await counts();
    expect(after).toMatchObject({ rows: 0, chunks: 20, raw: 0, buckets: rowsBefore.n + 1 });
    expect(after.bytes).toBeLessThan(rowsBefore.bytes / 3);
    expect(await store.querySamples({ gpu, order: 'asc', limit: 10 })).toEqual([]);
    expect(await minuteAnswers()).toEqual(before);
  });

  it('a late sample into a window whose raw samples expired: merged into the stored buckets, packed again', async () => {
    const temp = await atMinute(lateMinute, 'DCGM_FI_DEV_GPU_TEMP');
    expect(temp?.aggregate?.count).toBe(1);
    const late = sample({ ...key('DCGM_FI_DEV_GPU_TEMP'), timestampMs: lateMinute + 50_000, value: 3 });
    expect((await store.writeBatch(batch([late]))).inserted).toBe(1);
    const merged = { count: 2, min: 3, max: 12.5, last: 3 };
    expect((await atMinute(lateMinute, 'DCGM_FI_DEV_GPU_TEMP'))?.aggregate).toMatchObject(merged);
    const again = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 40 * HOUR });
    expect(again.windows).toBe(1);
    // The window's one raw sample is a chunk again; its buckets stay stored (the raw chunk does not
    // hold them all), so readers take the 1-minute chunk over the raw one.
    expect(await counts()).toMatchObject({ rows: 0, chunks: 20, raw: 1, buckets: rowsBefore.n + 1 });
    expect((await atMinute(lateMinute, 'DCGM_FI_DEV_GPU_TEMP'))?.aggregate).toMatchObject(merged);
    expect((await minuteAnswers()).all).toHaveLength(rowsBefore.n + 1);
  });
});

describe('upgrading a store compacted before migration 7 (PGlite)', () => {
  it('settles the 1-minute rows kept beside the chunks: each bucket once, late writes merge', async () => {
    const store = (await createPgliteSampleStore({ memory: true })) as SqlSampleStore;
    try {
      await store.withSql('test', (db) =>
        applyMigrations(
          db,
          MIGRATIONS.filter((m) => m.version <= 6),
        ),
      );
      const day = Date.parse('2026-11-20T00:00:00Z');
      const s: Sample[] = [];
      for (let t = 0; t < 6 * HOUR; t += 30_000) s.push(sample({ timestampMs: day + t, value: 1 }));
      // Today's write path queues or marks the rollups (migrations 8, 10); a version 6 store folded
      // them on write: a stand-in queue (and a mark function that queues everything) takes the
      // write, then the raw rows become the 1-minute rows it wrote.
      await store.withSql('test', async (db) => {
        await db.query(
          'CREATE TABLE rollup_pending (series_ids int4[], ts_ms float8[], vals float8[], ts_min float8, ts_max float8)',
        );
        await db.query(`CREATE FUNCTION nexus_mark_hours(p_series int4[], p_hours float8[])
RETURNS TABLE (o_series int4, o_hour float8) LANGUAGE sql AS 'SELECT * FROM unnest(p_series, p_hours)'`);
      });
      await store.writeBatch(batch(s));
      await store.withSql('test', async (db) => {
        await db.query(`INSERT INTO samples_1m (series_id, bucket, min, max, sum, count, last, last_ts)
SELECT series_id, date_bin('1 minute', ts, '1970-01-01 00:00:00+00'), min(value), max(value), sum(value ORDER BY ts),
       count(*), (array_agg(value ORDER BY ts))[count(*)], max(ts)
FROM samples GROUP BY 1, 2`);
        await db.query('DROP TABLE rollup_pending');
        await db.query('DROP FUNCTION nexus_mark_hours(int4[], float8[])');
      });
      // Version 6's compaction: raw chunks, the 1-minute rows left as they were.
      await store.withSql('test', async (db) => {
        for (let w = 0; w < 4; w++)
          await db.query('SELECT nexus_compact_window(to_timestamp($1::float8 / 1000))', [
            day + w * 6 * HOUR,
          ]);
      });
      await store.migrate();
      const totals = async () => {
        await store.flushRollups();
        return store.withSql(
          'test',
          async (db) =>
            (
              await db.query<{ buckets: number; samples: number }>(
                `SELECT count(*)::float8 AS buckets, sum(count)::float8 AS samples FROM ${ALL_MINUTE_BUCKETS} AS x`,
              )
            ).rows[0],
        );
      };
      expect(await totals()).toEqual({ buckets: 360, samples: 720 });
      expect(
        (await store.writeBatch(batch([sample({ timestampMs: day + 15_000, value: 5 })]))).inserted,
      ).toBe(1);
      expect(await totals()).toEqual({ buckets: 360, samples: 721 });
      expect(
        (await store.compact({ hotMs: 2 * HOUR, nowMs: day + 48 * HOUR })).windows,
      ).toBeGreaterThanOrEqual(1);
      expect(await totals()).toEqual({ buckets: 360, samples: 721 });
    } finally {
      await store.close();
    }
  });
});

describe('1-minute buckets of raw rows (PGlite, migration 9)', () => {
  it('retention stores them before the raw rows go: sums past float8 saturate, a window both stored and raw counts once, a drop that would lose them is refused', async () => {
    const store = (await createPgliteSampleStore({ memory: true })) as SqlSampleStore;
    const sql = <T>(text: string, params: unknown[] = []): Promise<T[]> =>
      store.withSql(
        'test',
        async (db) => (await db.query<T & Record<string, unknown>>(text, params)).rows as T[],
      );
    try {
      await store.migrate();
      const day = Date.parse('1970-02-01T00:00:00Z');
      const huge = { clusterId: 'raw1m', uuid: 'GPU-huge', metric: 'DCGM_FI_DEV_POWER_USAGE' };
      const plain = { clusterId: 'raw1m', uuid: 'GPU-plain', metric: 'DCGM_FI_DEV_GPU_UTIL' };
      const plainSamples = Array.from({ length: 1440 }, (_, i) =>
        sample({ ...plain, timestampMs: day + i * 30_000, value: (i * 7) % 100 }),
      );
      await store.writeBatch(
        batch([
          sample({ ...huge, timestampMs: day + HOUR + 10_000, value: 1.5e308 }),
          sample({ ...huge, timestampMs: day + HOUR + 20_000, value: 1.5e308 }),
          ...plainSamples,
          // Newer data: retention counts its bounds back from the newest sample.
          sample({ ...plain, uuid: 'GPU-later', timestampMs: day + 10 * DAY, value: 1 }),
        ]),
      );
      await store.flushRollups();
      expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM samples_1m'))[0]!.n).toBe(0);
      const minutes = async (uuid: string) =>
        store.querySamples({ gpu: { uuid }, resolution: '1m', order: 'asc', limit: 10_000 });
      const summary = async () =>
        (
          await store.summarizeSeries({
            filter: { clusterId: 'raw1m' },
            startMs: day,
            endMs: day + 12 * HOUR,
            resolution: '1m',
          })
        ).map((s) => [s.series.uuid, s.count, s.sum]);
      const plainSum = plainSamples.reduce((a, s) => a + s.value, 0);
      const expected = [
        ['GPU-huge', 2, Infinity],
        ['GPU-plain', 1440, plainSum],
      ];
      // Computed from raw rows: the huge minute's sum saturates (the query is retried).
      expect((await minutes('GPU-huge')).map((m) => [m.aggregate?.count, m.aggregate?.avg])).toEqual([
        [2, Infinity],
      ]);
      expect(await summary()).toEqual(expected);

      // A drop that would take computed buckets with it is refused.
      expect(
        (await sql<{ d: boolean }>("SELECT nexus_drop_partition('samples', 'samples_p19700201') AS d"))[0]!.d,
      ).toBe(false);
      expect(await store.countSamples()).toBe(1443);

      // The first window's buckets stored while its raw rows stay: every sample still counts once.
      await sql('SELECT nexus_store_raw_minutes($1::timestamptz)', [new Date(day).toISOString()]);
      expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM samples_1m'))[0]!.n).toBe(361);
      const plainMinutes = await minutes('GPU-plain');
      expect(plainMinutes).toHaveLength(720);
      expect(plainMinutes.reduce((n, m) => n + (m.aggregate?.count ?? 0), 0)).toBe(1440);
      expect(await summary()).toEqual(expected);

      // Retention: every window's buckets stored (the huge one saturated), then the day goes.
      const r = await store.applyRetention({ rawMs: DAY, rollupMs: 0, nowMs: day + 10 * DAY });
      expect(r.dropped).toContain('samples_p19700201');
      expect(await store.countSamples()).toBe(1);
      expect((await minutes('GPU-huge')).map((m) => [m.aggregate?.count, m.aggregate?.avg])).toEqual([
        [2, Infinity],
      ]);
      expect((await minutes('GPU-plain')).map((m) => [m.timestampMs, m.aggregate?.count])).toEqual(
        plainMinutes.map((m) => [m.timestampMs, m.aggregate?.count]),
      );
      expect(await summary()).toEqual(expected);
    } finally {
      await store.close();
    }
  });
});
