/**
 * Compressed chunks of 1-minute rollups (migration 7, `rollup_chunks_1m`): the compaction pass that
 * turns a 6-hour window's raw rows into `sample_chunks` (chunks.ts) also turns the window's
 * `samples_1m` rows into one row per series of arrays (minute, count, offset of the last sample,
 * and min/max/sum/last side by side), which TOAST compresses. A late write into the window turns
 * both back into rows, in the same call. Readers of the 1-minute level see rows and chunks as one
 * through {@link minuteRollupSql}. Why: at a 30 s scrape a 1-minute row stored more bytes than the
 * two samples it summarises (docs/performance.md, "1-minute rollups as chunks").
 */
import type { RawBounds } from './chunks.js';
import type { SqlExecutor } from './sql-executor.js';

const windowOf = (column: string, b: RawBounds): string[] => [
  ...(b.from === undefined ? [] : [`${column} >= ${b.from}`]),
  ...(b.to === undefined ? [] : [`${column} ${b.toExclusive ? '<' : '<='} ${b.to}`]),
];

/**
 * Every 1-minute bucket (`series_id`, `bucket`, `min`, `max`, `sum`, `count`, `last`) of the series
 * `seriesOf(column)` selects whose start lies within the bounds: the rows of `samples_1m` and the
 * chunks' buckets, as one relation (unordered). Chunks are pruned on the primary key and on their
 * first and last bucket; only the slice of a chunk that can hold the bounds is read.
 */
export function minuteRollupSql(seriesOf: (column: string) => string, b: RawBounds = {}): string {
  const before = b.toExclusive ? '<' : '<=';
  const rows = [seriesOf('series_id'), ...windowOf('bucket', b)];
  const prune = [
    seriesOf('c.series_id'),
    ...(b.from === undefined
      ? []
      : [`c.start_ts > ${b.from} - interval '6 hours'`, `c.last_ts >= ${b.from}`]),
    ...(b.to === undefined ? [] : [`c.start_ts ${before} ${b.to}`, `c.first_ts ${before} ${b.to}`]),
    ...windowOf('d.bucket', b),
  ];
  return `(SELECT series_id, bucket, min, max, sum, count, last FROM samples_1m WHERE ${rows.join(' AND ')}
UNION ALL
SELECT c.series_id, d.bucket, d.min, d.max, d.sum, d.count, d.last
FROM rollup_chunks_1m c
CROSS JOIN LATERAL nexus_minute_chunk_rows(c.start_ts, c.minutes, c.counts, c.last_us, c.aggs,
  ${b.from ?? 'NULL'}, ${b.to ?? 'NULL'}) d
WHERE ${prune.join(' AND ')})`;
}

/** Delete the 1-minute chunks of windows that end at or before `cutoffMs` (the rollup bound). */
export async function trimMinuteChunks(db: SqlExecutor, cutoffMs: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT nexus_trim_minute_chunks($1::timestamptz)::float8 AS n',
    [new Date(cutoffMs).toISOString()],
  );
  return rows[0]?.n ?? 0;
}

/** Every 1-minute bucket, rows and chunks, as one relation (see {@link minuteRollupSql}): for checks and tools. */
export const ALL_MINUTE_BUCKETS = minuteRollupSql(() => 'true');
