/**
 * Rollups: per series, 1-minute, 1-hour and 1-day buckets of min, max, sum, count and last (by
 * time), in `samples_1m`, `samples_1h` and `samples_1d`. The write path queues exactly the samples
 * it inserted (never the natural-key duplicates it skipped) in `rollup_pending`, in the batch
 * transaction; `nexus_flush_rollups()` (migration 8) folds the queue into the three tables in bulk
 * and deletes it, in one statement, so every queued sample is folded exactly once. The store
 * flushes in the background as samples accumulate, and before every read of the rollups and every
 * compaction or retention pass, so readers never see rollups behind the committed raw samples.
 * Folded in bulk, each bucket row is written once per flush instead of once per batch: writes of
 * scrape-shaped batches 2.3x faster (docs/performance.md, "Rollups folded in bulk").
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
 * The daily level (`samples_1d`, migration 5): folded like the others, read only by
 * `summarizeSeries` for the whole UTC days of a long range (not a query resolution).
 */
export const DAILY_LEVEL = { table: 'samples_1d', bucketMs: 86_400_000 } as const;

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

/**
 * Queue the samples a write inserted for the rollups (inside the batch transaction): one
 * `rollup_pending` row of three arrays, folded into every level in bulk by
 * `nexus_flush_rollups()` (migration 8; {@link FLUSH_ROLLUPS_SQL}).
 */
export async function queueRollups(
  tx: SqlExecutor,
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
  values: ArrayLike<number>,
): Promise<void> {
  if (seriesIds.length === 0) return;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < timestampsMs.length; i++) {
    const t = timestampsMs[i] as number;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  await tx.query(
    `INSERT INTO rollup_pending (series_ids, ts_ms, vals, ts_min, ts_max)
VALUES ($1::int4[], $2::float8[], $3::float8[], $4, $5)`,
    [...[seriesIds, timestampsMs, values].map(numericArrayLiteral), min, max],
  );
}

/** Fold every committed queued sample into the rollups; `n` is the samples folded. */
export const FLUSH_ROLLUPS_SQL = 'SELECT nexus_flush_rollups()::float8 AS n';
