/**
 * 1-minute rollups as chunks (migration 7, src/storage/minute-chunks.ts), on PGlite: compaction
 * moves the 1-minute rows of its windows into `rollup_chunks_1m` and drops the emptied day
 * partitions, every 1-minute read answers as before for random bounds (the slice arithmetic of
 * `nexus_minute_chunk_rows` included), a late write turns the bucket's chunk back into rows and
 * merges into it, and the chunks take a fraction of the rows' bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import type { SqlSampleStore } from '../../src/storage/sql-sample-store.js';
import { batch, sample } from '../support/samples.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
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
    for (let i = 0; i < samples.length; i += 2000) await store.writeBatch(batch(samples.slice(i, i + 2000)));
  }, 120_000);

  afterAll(async () => {
    await store?.close();
  });

  it('compaction moves the buckets into chunks and answers every 1-minute read as before', async () => {
    const bounds = Array.from({ length: 40 }, () => {
      const a = DAY0 - HOUR + Math.floor(rand() * 32 * HOUR);
      const b = a + Math.floor(rand() * (rand() < 0.5 ? 20 * 60_000 : 9 * HOUR));
      return [a, b] as const;
    });
    const answers = async () => ({
      all: await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 10_000 }),
      ranges: await Promise.all(
        bounds.map(([startMs, endMs], i) =>
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
        bounds.map(([startMs, endMs]) =>
          store.summarizeSeries({ filter: { clusterId: 'mc' }, startMs, endMs, resolution: '1m' }),
        ),
      ),
      rawSummaries: await Promise.all(
        bounds.map(([startMs, endMs]) =>
          store.summarizeSeries({ filter: { clusterId: 'mc' }, startMs, endMs, resolution: 'raw' }),
        ),
      ),
    });
    const rounded = (a: Awaited<ReturnType<typeof answers>>) => ({
      ...a,
      summaries: a.summaries.map((l) => l.map((s) => ({ ...s, sum: Number(s.sum.toPrecision(12)) }))),
      rawSummaries: a.rawSummaries.map((l) => l.map((s) => ({ ...s, sum: Number(s.sum.toPrecision(12)) }))),
    });
    const before = rounded(await answers());
    // 30 h of power at 20 s: 1,800 minutes with 3 samples each; temperature fills most minutes.
    expect(before.all.filter((s) => s.metric === 'DCGM_FI_DEV_POWER_USAGE')).toHaveLength(1800);
    expect(before.ranges.some((r) => r.length > 100)).toBe(true);
    const [rowsBefore] = await sql<{ n: number; bytes: number }>(
      `SELECT count(*)::float8 AS n, sum(pg_column_size(m.*))::float8 AS bytes FROM samples_1m m`,
    );

    const result = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 40 * HOUR });
    expect(result.windows).toBe(6); // 4 + 2 of the second day (the second one empty)
    expect(result.droppedPartitions).toEqual(['samples_p19600501', 'samples_1m_p19600501']);
    const [after] = await sql<{ rows: number; chunks: number; buckets: number; bytes: number }>(
      `SELECT (SELECT count(*) FROM samples_1m)::float8 AS rows, count(*)::float8 AS chunks,
              sum(n)::float8 AS buckets, sum(pg_column_size(c.*))::float8 AS bytes FROM rollup_chunks_1m c`,
    );
    // 2 series x 5 windows, every bucket moved; the 1-minute day partition went with the raw one.
    expect(after).toMatchObject({ rows: 0, chunks: 10, buckets: rowsBefore!.n });
    expect(after!.bytes).toBeLessThan(rowsBefore!.bytes / 3);
    const parts = await sql<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'samples_1m'::regclass ORDER BY 1`,
    );
    expect(parts.map((p) => p.name)).not.toContain('samples_1m_p19600501');
    expect(rounded(await answers())).toEqual(before);
  });

  it('a late sample turns its window back into rows and merges into its bucket; the next pass packs it again', async () => {
    const minute = DAY0 + 7 * HOUR + 10 * 60_000; // inside the temperature gap
    const existing = DAY0 + 3 * HOUR + 5 * 60_000; // a power minute with 3 samples
    const read = (startMs: number) =>
      store.querySamples({ gpu, resolution: '1m', startMs, endMs: startMs, limit: 10 });
    const [power] = (await read(existing)).filter((s) => s.metric === 'DCGM_FI_DEV_POWER_USAGE');
    expect(power?.aggregate?.count).toBe(3);
    const late = [
      sample({ ...key('DCGM_FI_DEV_GPU_TEMP'), timestampMs: minute + 5_000, value: 12.5 }),
      sample({ ...key('DCGM_FI_DEV_POWER_USAGE'), timestampMs: existing + 59_999, value: 10_000 }),
    ];
    expect((await store.writeBatch(batch(late))).inserted).toBe(2);
    const check = async () => {
      const temp = (await read(minute)).find((s) => s.metric === 'DCGM_FI_DEV_GPU_TEMP');
      expect(temp?.aggregate).toMatchObject({ count: 1, min: 12.5, max: 12.5, last: 12.5 });
      const p = (await read(existing)).find((s) => s.metric === 'DCGM_FI_DEV_POWER_USAGE');
      expect(p?.aggregate).toMatchObject({ count: 4, max: 10_000, last: 10_000, min: power!.aggregate!.min });
    };
    await check();
    const [rows] = await sql<{ n: number }>('SELECT count(*)::float8 AS n FROM samples_1m');
    expect(rows!.n).toBeGreaterThan(100); // a chunk of each window came back as rows
    const again = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 40 * HOUR });
    expect(again.windows).toBe(2); // the two windows the late samples made dirty
    const [left] = await sql<{ n: number }>('SELECT count(*)::float8 AS n FROM samples_1m');
    expect(left!.n).toBe(0);
    await check();
  });
});
