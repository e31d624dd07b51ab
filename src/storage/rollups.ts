/**
 * Rollups: per series, 1-minute, 1-hour and 1-day buckets of min, max, sum, count and last (by
 * time), in `samples_1m`, `samples_1h` and `samples_1d`. The write path folds exactly the samples it inserted (never the
 * natural-key duplicates it skipped) into bucket rows here, in memory, then merges them into the
 * tables in the batch transaction with one `INSERT .. ON CONFLICT DO UPDATE` per table, so a replay
 * adds nothing to the counts and the rollups are never behind the raw samples.
 *
 * Buckets are aligned on the Unix epoch, i.e. on UTC minutes, hours and days.
 */
import type { Resolution } from '../ports/sample-store.js';
import { numericArrayLiteral, type SqlExecutor } from './sql-executor.js';

/** A rollup resolution and its table. */
export interface RollupLevel {
  resolution: Exclude<Resolution, 'raw'>;
  table: 'samples_1m' | 'samples_1h';
  bucketMs: number;
}

/** The rollup levels queries can ask for, finest first. */
export const ROLLUP_LEVELS: readonly RollupLevel[] = [
  { resolution: '1m', table: 'samples_1m', bucketMs: 60_000 },
  { resolution: '1h', table: 'samples_1h', bucketMs: 3_600_000 },
];

/**
 * The daily level (`samples_1d`, migration 5): written like the others, read only by
 * `summarizeSeries` for the whole UTC days of a long range (not a query resolution).
 */
export const DAILY_LEVEL = { table: 'samples_1d', bucketMs: 86_400_000 } as const;

/** A level the write path keeps current. */
type WrittenLevel = Pick<RollupLevel, 'bucketMs'> & { table: RollupLevel['table'] | 'samples_1d' };

/** The level of a rollup resolution. */
export function rollupLevel(resolution: Exclude<Resolution, 'raw'>): RollupLevel {
  return ROLLUP_LEVELS.find((l) => l.resolution === resolution) as RollupLevel;
}

/** Start (ms) of the bucket of `bucketMs` holding `ms`. */
export function bucketStart(ms: number, bucketMs: number): number {
  return Math.floor(ms / bucketMs) * bucketMs;
}

/** Bucket rows of one level, as parallel columns sorted by (series id, bucket). */
export interface RollupRows {
  seriesIds: number[];
  buckets: number[];
  min: number[];
  max: number[];
  sum: number[];
  count: number[];
  last: number[];
  lastTs: number[];
}

interface Acc {
  seriesId: number;
  bucket: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
  lastTs: number;
}

/**
 * Fold samples (parallel arrays, each (series, time) at most once) into the buckets of one level.
 * Rows come out sorted by (series id, bucket), the order in which every writer locks them.
 */
export function foldRollup(
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
  values: ArrayLike<number>,
  bucketMs: number,
): RollupRows {
  const bySeries = new Map<number, Map<number, Acc>>();
  const n = seriesIds.length;
  for (let i = 0; i < n; i++) {
    const seriesId = seriesIds[i] as number;
    const ts = timestampsMs[i] as number;
    const v = values[i] as number;
    const bucket = bucketStart(ts, bucketMs);
    let buckets = bySeries.get(seriesId);
    if (buckets === undefined) bySeries.set(seriesId, (buckets = new Map()));
    const acc = buckets.get(bucket);
    if (acc === undefined) {
      buckets.set(bucket, { seriesId, bucket, min: v, max: v, sum: v, count: 1, last: v, lastTs: ts });
      continue;
    }
    if (v < acc.min) acc.min = v;
    if (v > acc.max) acc.max = v;
    acc.sum += v;
    acc.count += 1;
    if (ts >= acc.lastTs) {
      acc.last = v;
      acc.lastTs = ts;
    }
  }
  const out: RollupRows = {
    seriesIds: [],
    buckets: [],
    min: [],
    max: [],
    sum: [],
    count: [],
    last: [],
    lastTs: [],
  };
  for (const seriesId of [...bySeries.keys()].sort((a, b) => a - b)) {
    const buckets = bySeries.get(seriesId) as Map<number, Acc>;
    for (const bucket of [...buckets.keys()].sort((a, b) => a - b)) {
      const a = buckets.get(bucket) as Acc;
      out.seriesIds.push(a.seriesId);
      out.buckets.push(a.bucket);
      out.min.push(a.min);
      out.max.push(a.max);
      out.sum.push(a.sum);
      out.count.push(a.count);
      out.last.push(a.last);
      out.lastTs.push(a.lastTs);
    }
  }
  return out;
}

/** Largest finite float8, for the overflow-safe sum below. */
const MAX_FLOAT8 = '1.7976931348623157e308';

/**
 * Merge one level's bucket rows into its table (inside the batch transaction). Sums that would
 * overflow float8 saturate to +/-Infinity instead of failing the batch.
 */
export async function mergeRollup(tx: SqlExecutor, level: WrittenLevel, rows: RollupRows): Promise<void> {
  if (rows.seriesIds.length === 0) return;
  await tx.query(
    `INSERT INTO ${level.table} AS r (series_id, bucket, min, max, sum, count, last, last_ts)
SELECT i, to_timestamp(b / 1000), mn, mx, s, c, l, to_timestamp(lt / 1000)
FROM unnest($1::int4[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::int8[], $7::float8[],
            $8::float8[]) AS u(i, b, mn, mx, s, c, l, lt)
ORDER BY i, b
ON CONFLICT (series_id, bucket) DO UPDATE SET
  min = least(r.min, excluded.min),
  max = greatest(r.max, excluded.max),
  sum = CASE WHEN sign(r.sum) = sign(excluded.sum) AND abs(r.sum) > '${MAX_FLOAT8}'::float8 - abs(excluded.sum)
             THEN sign(r.sum) * 'Infinity'::float8 ELSE r.sum + excluded.sum END,
  count = r.count + excluded.count,
  last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END,
  last_ts = greatest(r.last_ts, excluded.last_ts)`,
    [rows.seriesIds, rows.buckets, rows.min, rows.max, rows.sum, rows.count, rows.last, rows.lastTs].map(
      numericArrayLiteral,
    ),
  );
}

/** Fold and merge every rollup level for the samples a write inserted. */
export async function updateRollups(
  tx: SqlExecutor,
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
  values: ArrayLike<number>,
): Promise<void> {
  if (seriesIds.length === 0) return;
  for (const level of [...ROLLUP_LEVELS, DAILY_LEVEL]) {
    await mergeRollup(tx, level, foldRollup(seriesIds, timestampsMs, values, level.bucketMs));
  }
}
