/**
 * The 1-minute rollups of compacted windows (migration 7). When a compaction pass turns a 6-hour
 * window's raw rows into `sample_chunks` (chunks.ts), the window's `samples_1m` rows go: readers
 * compute those buckets from the raw chunks (at a 30 s scrape a bucket's five numbers took more
 * room than its two samples). When the raw chunks expire, their buckets are stored in
 * `rollup_chunks_1m`, one row per series and window of arrays (minute, count, offset of the last
 * sample, and min/max/sum/last side by side) that TOAST compresses; so are the rows of a window
 * whose raw samples are no longer all there. A late write into a compacted window turns its
 * chunks back into rows first. Readers of the 1-minute level see all of it as one through
 * {@link minuteRollupSql}. Measured: docs/performance.md, "1-minute rollups of compacted windows".
 */
import { chunkPrune, type RawBounds, windowOf } from './chunks.js';
import type { SqlExecutor } from './sql-executor.js';

/**
 * {@link chunkPrune} for raw chunks: a bucket starting at the upper bound holds samples up to a
 * minute past it, so the first sample of a chunk may lie that far beyond.
 */
function rawChunkPrune(seriesOf: (column: string) => string, b: RawBounds): string[] {
  return [
    ...chunkPrune(seriesOf, { ...(b.from === undefined ? {} : { from: b.from }) }),
    ...(b.to === undefined
      ? []
      : [`c.start_ts ${b.toExclusive ? '<' : '<='} ${b.to}`, `c.first_ts < ${b.to} + interval '1 minute'`]),
  ];
}

/** SQL: the start of the UTC minute holding timestamptz `ts` (an origin before any data: rounds down). */
const MINUTE_OF = (ts: string): string => `date_bin('1 minute', ${ts}, '0001-01-01 00:00:00+00')`;

/**
 * Raw chunk `c` holds at most one sample a minute (consecutive samples are at least a minute apart:
 * its step less twice its greatest jitter): each sample is its own bucket, nothing to aggregate.
 */
const SPARSE = '(c.n = 1 OR c.step_us - 2 * c.max_jitter_us >= 60000000)';

/** The series and window of raw chunk `c` have a 1-minute chunk, which then holds the buckets. */
const HAS_MINUTE_CHUNK =
  'EXISTS (SELECT 1 FROM rollup_chunks_1m r WHERE r.series_id = c.series_id AND r.start_ts = c.start_ts)';

/** SQL: the start of the 6-hour UTC window holding timestamptz `ts` (as chunk windows are cut). */
const WINDOW_OF = (ts: string): string => `to_timestamp(floor(date_part('epoch', ${ts}) / 21600) * 21600)`;

/**
 * SQL: the raw rows of `samples s` that readers compute buckets from, i.e. those whose series and
 * window have no stored 1-minute bucket (no `samples_1m` row in the window, which then holds every
 * bucket of it, and no 1-minute chunk): the series the rows belong to (`seriesOf`) and the raw
 * bounds (`raw`) select them; the stored (series, window) pairs around them are read once and
 * joined out before any aggregate (the raw rows of a window with stored buckets are never summed).
 */
function computedRawRows(seriesOf: (column: string) => string, raw: RawBounds): string {
  const near = (column: string): string[] => [
    ...(raw.from === undefined ? [] : [`${column} > ${raw.from} - interval '6 hours'`]),
    ...(raw.to === undefined ? [] : [`${column} < ${raw.to} + interval '6 hours'`]),
  ];
  return `samples s
  LEFT JOIN (SELECT DISTINCT x.series_id, ${WINDOW_OF('x.bucket')} AS w FROM samples_1m x
             WHERE ${[seriesOf('x.series_id'), ...near('x.bucket')].join(' AND ')}) AS st
    ON st.series_id = s.series_id AND st.w = ${WINDOW_OF('s.ts')}
  LEFT JOIN (SELECT x.series_id, x.start_ts AS w FROM rollup_chunks_1m x
             WHERE ${[seriesOf('x.series_id'), ...near('x.start_ts')].join(' AND ')}) AS sc
    ON sc.series_id = s.series_id AND sc.w = ${WINDOW_OF('s.ts')}
  WHERE ${[seriesOf('s.series_id'), ...windowOf('s.ts', raw), 'st.series_id IS NULL', 'sc.series_id IS NULL'].join(' AND ')}`;
}

/**
 * Every 1-minute bucket (`series_id`, `bucket`, `min`, `max`, `sum`, `count`, `last`) of the series
 * `seriesOf(column)` selects whose start lies within the bounds, as one relation (unordered): the
 * rows of `samples_1m`, the 1-minute chunks, and the buckets computed from the raw chunks of the
 * series and windows without a 1-minute chunk. Chunks are pruned on their primary key and on their
 * first and last time; only the slice of a chunk that can hold the bounds is read.
 */
export function minuteRollupSql(
  seriesOf: (column: string) => string,
  b: RawBounds = {},
  saturate = false,
): string {
  // float8's sum raises an error past its range; the saturating aggregate adds as JavaScript does
  // (slower: taken only when the plain one failed, see SqlSampleStore.querySamples).
  const sum = saturate ? 'nexus_saturating_sum' : 'sum';
  const rows = [seriesOf('series_id'), ...windowOf('bucket', b)];
  // Raw samples of the buckets starting in the bounds: from the lower bound (a bucket starting at
  // or after it holds no earlier sample) to a minute past the upper one.
  const rawTo = b.to === undefined ? undefined : `${b.to} + interval '1 minute'`;
  const raw = {
    ...(b.from === undefined ? {} : { from: b.from }),
    ...(rawTo === undefined ? {} : { to: rawTo }),
  };
  // One aggregate over every chunk's samples (an aggregate per chunk cost more than the samples:
  // hourly data has a few samples per chunk). The sum is added in time order, as nexus_chunk_minutes
  // adds it; `last` is the value at the greatest time.
  return `(SELECT series_id, bucket, min, max, sum, count, last FROM samples_1m WHERE ${rows.join(' AND ')}
UNION ALL
SELECT c.series_id, d.bucket, d.min, d.max, d.sum, d.count, d.last
FROM rollup_chunks_1m c
CROSS JOIN LATERAL nexus_minute_chunk_rows(c.start_ts, c.minutes, c.counts, c.last_us, c.aggs,
  ${b.from ?? 'NULL'}, ${b.to ?? 'NULL'}) d
WHERE ${[...chunkPrune(seriesOf, b), ...windowOf('d.bucket', b)].join(' AND ')}
UNION ALL
SELECT c.series_id, ${MINUTE_OF('d.ts')}, d.value, d.value, d.value, 1::bigint, d.value
FROM sample_chunks c
CROSS JOIN LATERAL nexus_chunk_samples(c.first_ts, c.step_us, c.max_jitter_us, c.jitter_us, c.vals,
  ${b.from ?? 'NULL'}, ${rawTo ?? 'NULL'}) d
WHERE ${[...rawChunkPrune(seriesOf, b), `NOT ${HAS_MINUTE_CHUNK}`, SPARSE, ...windowOf('d.ts', { ...raw, toExclusive: true }), ...windowOf(MINUTE_OF('d.ts'), b)].join(' AND ')}
UNION ALL
SELECT series_id, bucket, min, max, sum, count, last FROM (
  SELECT c.series_id, ${MINUTE_OF('d.ts')} AS bucket, min(d.value) AS min, max(d.value) AS max,
         ${sum}(d.value ORDER BY d.ts) AS sum, count(*) AS count, (array_agg(d.value ORDER BY d.ts))[count(*)] AS last
  FROM sample_chunks c
  CROSS JOIN LATERAL nexus_chunk_samples(c.first_ts, c.step_us, c.max_jitter_us, c.jitter_us, c.vals,
    ${b.from ?? 'NULL'}, ${rawTo ?? 'NULL'}) d
  WHERE ${[...rawChunkPrune(seriesOf, b), `NOT ${HAS_MINUTE_CHUNK}`, `NOT ${SPARSE}`, ...windowOf('d.ts', { ...raw, toExclusive: true })].join(' AND ')}
  GROUP BY 1, 2
) AS computed WHERE ${['true', ...windowOf('bucket', b)].join(' AND ')}
UNION ALL
SELECT series_id, bucket, min, max, sum, count, last FROM (
  SELECT s.series_id, ${MINUTE_OF('s.ts')} AS bucket, min(s.value) AS min, max(s.value) AS max,
         ${sum}(s.value ORDER BY s.ts) AS sum, count(*) AS count, (array_agg(s.value ORDER BY s.ts))[count(*)] AS last
  FROM ${computedRawRows(seriesOf, { ...raw, toExclusive: true })}
  GROUP BY 1, 2
) AS computed_rows WHERE ${['true', ...windowOf('bucket', b)].join(' AND ')})`;
}

/**
 * Per series, the totals (`series_id`, `count`, `sum`, `min`, `max`; several rows a series) of the
 * 1-minute buckets the series `seriesOf` selects have starting in [from, to): rows and 1-minute
 * chunks as buckets, the raw chunks' samples in [`minuteFrom`, `minuteTo`) (the bounds rounded up
 * to minutes) one by one, which is the same total without computing a bucket.
 */
export function minuteTotalsSql(
  seriesOf: (column: string) => string,
  b: { from: string; to: string; minuteFrom: string; minuteTo: string },
  chunkSeriesOf: (column: string) => string = seriesOf,
): string {
  const buckets: RawBounds = { from: b.from, to: b.to, toExclusive: true };
  const samples: RawBounds = { from: b.minuteFrom, to: b.minuteTo, toExclusive: true };
  return `(SELECT series_id, count, sum, min, max FROM samples_1m WHERE ${[seriesOf('series_id'), ...windowOf('bucket', buckets)].join(' AND ')}
UNION ALL
SELECT c.series_id, d.count, d.sum, d.min, d.max
FROM rollup_chunks_1m c
CROSS JOIN LATERAL nexus_minute_chunk_rows(c.start_ts, c.minutes, c.counts, c.last_us, c.aggs, ${b.from}, ${b.to}) d
WHERE ${[...chunkPrune(chunkSeriesOf, buckets), ...windowOf('d.bucket', buckets)].join(' AND ')}
UNION ALL
SELECT c.series_id, 1::bigint, d.value, d.value, d.value
FROM sample_chunks c
CROSS JOIN LATERAL nexus_chunk_samples(c.first_ts, c.step_us, c.max_jitter_us, c.jitter_us, c.vals, ${b.minuteFrom}, ${b.minuteTo}) d
WHERE ${[...chunkPrune(chunkSeriesOf, samples), `NOT ${HAS_MINUTE_CHUNK}`, ...windowOf('d.ts', samples)].join(' AND ')}
UNION ALL
SELECT s.series_id, 1::bigint, s.value, s.value, s.value FROM ${computedRawRows(seriesOf, samples)})`;
}

/**
 * The series (`series_id`, repeats possible) `seriesOf(column)` selects that may have a 1-minute
 * bucket starting within the bounds: those with a row there, and those with a chunk of either
 * kind over them (a superset, read without computing a bucket).
 */
export function minuteSeriesSql(
  seriesOf: (column: string) => string,
  b: RawBounds,
  chunkSeriesOf: (column: string) => string = seriesOf,
): string {
  const rows = [seriesOf('series_id'), ...windowOf('bucket', b)];
  return `(SELECT series_id FROM samples_1m WHERE ${rows.join(' AND ')}
UNION ALL
SELECT c.series_id FROM rollup_chunks_1m c WHERE ${chunkPrune(chunkSeriesOf, b).join(' AND ')}
UNION ALL
SELECT c.series_id FROM sample_chunks c WHERE ${rawChunkPrune(chunkSeriesOf, b).join(' AND ')}
UNION ALL
SELECT s.series_id FROM samples s WHERE ${[
    seriesOf('s.series_id'),
    ...windowOf('s.ts', {
      ...(b.from === undefined ? {} : { from: b.from }),
      ...(b.to === undefined ? {} : { to: `${b.to} + interval '1 minute'` }),
      toExclusive: true,
    }),
  ].join(' AND ')})`;
}

/**
 * Store as `samples_1m` rows the 1-minute buckets that readers compute from raw rows, for the
 * 6-hour windows starting at `windowsMs`, before retention deletes those rows (one transaction per
 * window: `nexus_store_raw_minutes`). Returns the rows written.
 */
export async function storeRawMinutes(db: SqlExecutor, windowsMs: Iterable<number>): Promise<number> {
  let n = 0;
  for (const w of [...new Set(windowsMs)].sort((a, b) => a - b)) {
    const { rows } = await db.query<{ n: number }>(
      'SELECT nexus_store_raw_minutes(to_timestamp($1::float8 / 1000))::float8 AS n',
      [w],
    );
    n += rows[0]?.n ?? 0;
  }
  return n;
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
