/**
 * Rollups of marked hours (migration 10, src/storage/rollups.ts), on PGlite: a backfill-shaped
 * batch (few series, many samples each) marks its (series, hour) pairs instead of queueing its
 * samples, and the flush rebuilds those hours from their raw rows, then folds the queue without
 * the samples of the rebuilt hours. Every level must equal the raw rows' aggregates whatever mix
 * of marked and queued writes reached an hour, redeliveries included; an hour already counted is
 * never rebuilt (its raw rows may have expired), and raw rows of a marked hour outlive retention's
 * partition drop until the build has read them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import { SAMPLES_PER_MARK } from '../../src/storage/rollups.js';
import type { SqlSampleStore } from '../../src/storage/sql-sample-store.js';
import { batch, sample } from '../support/samples.js';

const T0 = Date.parse('2026-10-05T00:00:00Z');

describe('rollups of marked hours (PGlite)', () => {
  let store: SqlSampleStore;
  const sql = <T>(text: string): Promise<T[]> =>
    store.withSql('test', async (db) => (await db.query<T & Record<string, unknown>>(text)).rows as T[]);
  const count = async (table: string): Promise<number> =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
  const power = { clusterId: 'marks', uuid: 'GPU-marks-0', metric: 'DCGM_FI_DEV_POWER_USAGE' };

  /**
   * Rows of one level that differ from the raw rows' aggregate of their bucket, either way (a
   * bucket missing on one side counts too; the 1-minute relation has no `last_ts`). Sums compared to 1e-9 relative: the levels add in
   * other orders than one straight sum.
   */
  const mismatches = async (level: string, width: string, lastTs = true): Promise<unknown[]> =>
    sql(`
WITH raw AS (
  SELECT series_id, date_bin('${width}', ts, '1970-01-01 00:00:00+00') AS bucket, min(value) AS min,
         max(value) AS max, sum(value) AS sum, count(*)::int AS count,
         (array_agg(value ORDER BY ts DESC))[1] AS last, max(ts) AS last_ts
  FROM samples GROUP BY 1, 2)
SELECT raw.series_id AS raw_series, l.series_id AS level_series, raw.bucket, l.bucket AS level_bucket,
       raw.count, l.count AS level_count, raw.sum, l.sum AS level_sum
FROM raw FULL JOIN ${level} l ON l.series_id = raw.series_id AND l.bucket = raw.bucket
WHERE raw.series_id IS NULL OR l.series_id IS NULL OR raw.count <> l.count OR raw.min <> l.min
   OR raw.max <> l.max OR raw.last <> l.last ${lastTs ? 'OR raw.last_ts <> l.last_ts' : ''}
   OR abs(raw.sum - l.sum) > 1e-9 * greatest(1, abs(raw.sum))
ORDER BY 1, 3`);

  const expectLevelsExact = async (): Promise<void> => {
    expect(await mismatches(`(${ALL_MINUTE_BUCKETS})`, '1 minute', false)).toEqual([]);
    expect(await mismatches('samples_1h', '1 hour')).toEqual([]);
    expect(await mismatches('samples_1d', '1 day')).toEqual([]);
  };

  /** One series' samples every 10 s over [from, from + hours), offset by `shiftMs`. */
  const backfill = (from: number, hours: number, shiftMs: number, seed: number): Sample[] =>
    Array.from({ length: hours * 360 }, (_, i) =>
      sample({ ...power, timestampMs: from + shiftMs + i * 10_000, value: ((i * 37 + seed) % 500) / 4 }),
    );

  beforeAll(async () => {
    store = (await createPgliteSampleStore({ memory: true })) as SqlSampleStore;
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('a backfill batch marks its hours, a scrape batch is queued, and each sample is counted once in every level', async () => {
    // Two hours of one series in one batch: 2 (series, hour) pairs for 720 samples.
    const first = backfill(T0, 2, 0, 1);
    expect(first.length / 2).toBeGreaterThanOrEqual(SAMPLES_PER_MARK);
    expect((await store.writeBatch(batch(first, [], 'backfill-1'))).inserted).toBe(720);
    expect(await count('rollup_marks')).toBe(2);
    expect(await count('rollup_pending')).toBe(0);

    // A scrape across 100 GPUs, the backfilled series among them, inside the first marked hour:
    // one (series, hour) per sample, so queued. Its sample of the marked hour is in the raw rows the
    // rebuild reads and in the queue: the fold must leave it out.
    const scrape = [
      sample({ ...power, timestampMs: T0 + 5_000, value: 999 }),
      ...Array.from({ length: 99 }, (_, g) =>
        sample({ ...power, uuid: `GPU-marks-s${g}`, timestampMs: T0 + 5_000, value: g }),
      ),
    ];
    expect((await store.writeBatch(batch(scrape, [], 'scrape-1'))).inserted).toBe(100);
    expect(await count('rollup_pending')).toBe(1);
    expect(await count('rollup_marks')).toBe(2);

    await store.flushRollups();
    expect(await count('rollup_marks')).toBe(0);
    expect(await count('rollup_pending')).toBe(0);
    const hours = await sql<{ count: number; max: number }>(
      `SELECT h.count::int AS count, h.max FROM samples_1h h JOIN series s ON s.id = h.series_id
       WHERE s.uuid = '${power.uuid}' ORDER BY h.bucket`,
    );
    expect(hours).toEqual([
      { count: 361, max: 999 },
      { count: 360, max: 124.75 },
    ]);
    await expectLevelsExact();
  });

  it('a sample under half a microsecond before an hour is marked in the hour it is stored in', async () => {
    const edge = { ...power, uuid: 'GPU-marks-edge' };
    const h = Date.parse('2026-10-06T03:00:00Z');
    const samples = [
      ...Array.from({ length: 15 }, (_, i) => sample({ ...edge, timestampMs: h + i * 1000, value: 1 })),
      // Stored as h + 1 hour (microsecond resolution).
      sample({ ...edge, timestampMs: h + 3_600_000 - 0.000244140625, value: 100 }),
    ];
    expect((await store.writeBatch(batch(samples, [], 'edge'))).inserted).toBe(16);
    await store.flushRollups();
    const hours = await sql<{ count: number }>(
      `SELECT h.count::int AS count FROM samples_1h h JOIN series s ON s.id = h.series_id
       WHERE s.uuid = '${edge.uuid}' ORDER BY h.bucket`,
    );
    expect(hours).toEqual([{ count: 15 }, { count: 1 }]);
  });

  it('the last value of a marked hour written out of order is its newest sample', async () => {
    const shuffled = { ...power, uuid: 'GPU-marks-shuffled' };
    const h = Date.parse('2026-10-07T03:00:00Z');
    const samples = Array.from({ length: 360 }, (_, i) =>
      sample({ ...shuffled, timestampMs: h + (359 - i) * 10_000, value: 359 - i }),
    );
    for (let i = samples.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [samples[i], samples[j]] = [samples[j]!, samples[i]!];
    }
    await store.writeBatch(batch(samples, [], 'shuffled'));
    await store.flushRollups();
    const rows = await sql<{ last: number; count: number; lt: number }>(
      `SELECT h.last, h.count::int AS count, (extract(epoch FROM h.last_ts) * 1000)::float8 AS lt
       FROM samples_1h h JOIN series s ON s.id = h.series_id WHERE s.uuid = '${shuffled.uuid}'`,
    );
    expect(rows).toEqual([{ last: 359, count: 360, lt: h + 359 * 10_000 }]);
  });

  it('a later backfill into a counted hour is queued; with a redelivery, each sample is counted once', async () => {
    const again = backfill(T0, 2, 0, 1);
    expect((await store.writeBatch(batch(again, [], 'backfill-1'))).inserted).toBe(0);
    const late = backfill(T0, 1, 2_500, 9).slice(0, 50);
    expect((await store.writeBatch(batch(late, [], 'backfill-2'))).inserted).toBe(50);
    // Scrape-shaped writes into the same hour before the flush: queued beside the mark.
    const scrape = Array.from({ length: 40 }, (_, g) =>
      sample({ ...power, uuid: `GPU-marks-s${g}`, timestampMs: T0 + 7_000, value: g + 0.5 }),
    );
    expect((await store.writeBatch(batch(scrape, [], 'scrape-2'))).inserted).toBe(40);
    // The hour has a row now: the backfill is queued too (a rebuild from raw rows is only for
    // hours nothing has counted yet).
    expect(await count('rollup_marks')).toBe(0);
    expect(await count('rollup_pending')).toBe(2);
    await store.flushRollups();
    const day = await sql<{ count: number }>(
      `SELECT d.count::int AS count FROM samples_1d d JOIN series s ON s.id = d.series_id
       WHERE s.uuid = '${power.uuid}'`,
    );
    expect(day).toEqual([{ count: 771 }]);
    await expectLevelsExact();
  });
});

describe('marks beside raw retention (PGlite)', () => {
  const DAY = 86_400_000;
  let store: SqlSampleStore;
  afterEach(async () => {
    await store?.close();
  });
  const sql = <T>(text: string): Promise<T[]> =>
    store.withSql('test', async (db) => (await db.query<T & Record<string, unknown>>(text)).rows as T[]);
  const power = { clusterId: 'marks', uuid: 'GPU-marks-0', metric: 'DCGM_FI_DEV_POWER_USAGE' };
  /** `n` samples of one series every 10 s from T0 + shift. */
  const run = (n: number, shiftMs: number, value: number, uuid = power.uuid): Sample[] =>
    Array.from({ length: n }, (_, i) =>
      sample({ ...power, uuid, timestampMs: T0 + shiftMs + i * 10_000, value }),
    );
  const levels = async (uuid = power.uuid) => {
    const q = (t: string) =>
      sql<{ count: number; sum: number }>(
        `SELECT x.count::int AS count, x.sum FROM ${t} x JOIN series s ON s.id = x.series_id
         WHERE s.uuid = '${uuid}' ORDER BY x.bucket`,
      );
    return { hour: await q('samples_1h'), day: await q('samples_1d') };
  };
  const fresh = async (): Promise<void> => {
    store = (await createPgliteSampleStore({ memory: true })) as SqlSampleStore;
    await store.migrate();
    await store.writeBatch(batch(run(360, 0, 1), [], 'first'));
  };

  // The raw rows of an hour counted 360 times are gone (retention keeps the rollups); a late
  // write into that hour must add to them, whatever its shape: a rebuild from the raw rows left
  // would drop the 360 (or keep the row and drop the late samples).
  for (const n of [7, 8, 360]) {
    it(`${n} late samples into an hour whose raw rows expired are added to it`, async () => {
      await fresh();
      await store.writeBatch(batch([sample({ uuid: 'GPU-newer', timestampMs: T0 + 10 * DAY })], [], 'newer'));
      await store.flushRollups();
      const r = await store.applyRetention({ rawMs: DAY, rollupMs: 0, nowMs: T0 + 10 * DAY + 3_600_000 });
      expect(r.dropped).toContain('samples_p20261005');
      expect(await levels()).toEqual({ hour: [{ count: 360, sum: 360 }], day: [{ count: 360, sum: 360 }] });
      await store.writeBatch(batch(run(n, 5_000, 2), [], 'late'));
      await store.flushRollups();
      const total = { count: 360 + n, sum: 360 + 2 * n };
      expect(await levels()).toEqual({ hour: [total], day: [total] });
    });
  }

  it('a partition drop waits for the build of a mark into it: a late backfill between the store step and the drop is kept', async () => {
    await fresh();
    await store.flushRollups();
    // Retention, step 1: the window's 1-minute buckets stored (its marks and queue built first).
    await sql(`SELECT nexus_store_raw_minutes('2026-10-05T00:00:00Z')`);
    // A late backfill of an hour nothing counted yet commits here: marked.
    await store.writeBatch(batch(run(8, 3_600_000, 2), [], 'late'));
    expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM rollup_marks'))[0]!.n).toBe(0);
    expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM rollup_pending'))[0]!.n).toBe(1);
    // (The day has a row, so even this is queued: marks go only to days nothing counted yet.)
    await store.writeBatch(batch(run(8, 0, 3, 'GPU-marks-late'), [], 'late-new-series'));
    expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM rollup_marks'))[0]!.n).toBe(1);
    // Retention, step 2: refused while the mark stands (and the new series has no stored buckets).
    const drop = async () =>
      (
        await sql<{ dropped: boolean }>(
          `SELECT nexus_drop_partition('samples', 'samples_p20261005') AS dropped`,
        )
      )[0]!.dropped;
    expect(await drop()).toBe(false);
    await store.flushRollups();
    await sql(`SELECT nexus_store_raw_minutes('2026-10-05T00:00:00Z')`);
    expect(await drop()).toBe(true);
    expect(await levels()).toEqual({
      hour: [
        { count: 360, sum: 360 },
        { count: 8, sum: 16 },
      ],
      day: [{ count: 368, sum: 376 }],
    });
    expect(await levels('GPU-marks-late')).toEqual({
      hour: [{ count: 8, sum: 24 }],
      day: [{ count: 8, sum: 24 }],
    });
    const [m] = await sql<{ count: number }>('SELECT sum(count)::int AS count FROM samples_1m');
    expect(m!.count).toBe(360 + 8 + 8);
  });
});
