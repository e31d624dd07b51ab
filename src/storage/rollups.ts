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

/**
 * A batch marks its hours instead of queueing its samples when it has at most one distinct
 * (series, hour) per this many samples: a backfill's batch (each series' samples together) marks a
 * handful of hours, a live scrape's would mark one per sample and is queued.
 */
export const SAMPLES_PER_MARK = 8;

const HOUR_MS = 3_600_000;

/**
 * Record the samples a write inserted for the rollups (inside the batch transaction, after its
 * windows are locked). A batch shaped like a backfill (at most one distinct (series, hour) per
 * {@link SAMPLES_PER_MARK} samples) marks its hours that nothing has counted yet
 * (`nexus_mark_hours`: the flush rebuilds a marked hour from its raw rows, whatever marked it);
 * every other sample is queued as one `rollup_pending` row of three arrays and folded into every
 * level in bulk. Both go through `nexus_flush_rollups()` (migrations 8 and 10;
 * {@link FLUSH_ROLLUPS_SQL}).
 */
export async function queueRollups(
  tx: SqlExecutor,
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
  values: ArrayLike<number>,
): Promise<void> {
  if (seriesIds.length === 0) return;
  const hours = new Map<string, [number, number]>();
  const markLimit = Math.floor(seriesIds.length / SAMPLES_PER_MARK);
  for (let i = 0; i < timestampsMs.length && hours.size <= markLimit; i++) {
    const id = seriesIds[i] as number;
    const hour = bucketStart(timestampsMs[i] as number, HOUR_MS);
    hours.set(`${id}:${hour}`, [id, hour]);
  }
  if (hours.size > markLimit) {
    await queueSamples(tx, seriesIds, timestampsMs, values);
    return;
  }
  const pairs = [...hours.values()];
  const { rows: counted } = await tx.query<{ o_series: number; o_hour: number }>(
    'SELECT o_series, o_hour FROM nexus_mark_hours($1::int4[], $2::float8[])',
    [numericArrayLiteral(pairs.map((p) => p[0])), numericArrayLiteral(pairs.map((p) => p[1]))],
  );
  if (counted.length === 0) return;
  // Hours already counted (or TimescaleDB): their samples are merged through the queue.
  const queued = new Set(counted.map((r) => `${r.o_series}:${r.o_hour}`));
  const ids: number[] = [];
  const times: number[] = [];
  const vals: number[] = [];
  for (let i = 0; i < seriesIds.length; i++) {
    const t = timestampsMs[i] as number;
    if (!queued.has(`${seriesIds[i] as number}:${bucketStart(t, HOUR_MS)}`)) continue;
    ids.push(seriesIds[i] as number);
    times.push(t);
    vals.push(values[i] as number);
  }
  await queueSamples(tx, ids, times, vals);
}

/** Queue samples as one `rollup_pending` row (series, times, values and the time range). */
async function queueSamples(
  tx: SqlExecutor,
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
  values: ArrayLike<number>,
): Promise<void> {
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
