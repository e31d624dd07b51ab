/**
 * Compressed chunks of raw samples (migration 6, `sample_chunks`): once a 6-hour UTC window is
 * older than the hot window, a compaction pass turns each series' rows of it into one row of two
 * arrays (time offsets from a regular grid, values) that PostgreSQL's TOAST compresses; the emptied
 * day partitions are dropped. Readers see rows and chunks as one (the SQL builders here); the write
 * path share-locks the windows it writes and turns back to rows the chunks of the series and
 * windows a late batch touches, so every natural-key check of `write-batch.ts` still sees every
 * stored sample. Why this format: docs/performance.md, "Raw samples as chunks".
 */
import type { CompactOptions, CompactResult } from '../ports/sample-store.js';
import { DAY_MS, PartitionCache, listPartitions, partitionName } from './partitions.js';
import type { SqlExecutor, TransactionExecutor } from './sql-executor.js';
import { numericArrayLiteral } from './sql-executor.js';

/** Span of one chunk window: 6 hours, aligned on UTC midnight (a day partition holds four). */
export const CHUNK_WINDOW_MS = 6 * 3_600_000;

/** Default hot window: raw rows stay rows for 2 hours after their window ends. */
export const DEFAULT_COMPACT_AFTER_MS = 2 * 3_600_000;

/** Start (ms) of the chunk window holding `ms`. */
export function chunkWindowStart(ms: number): number {
  return Math.floor(ms / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
}

/** Bounds of a raw read, as SQL timestamptz expressions; `toExclusive` makes `to` open. */
export interface RawBounds {
  from?: string;
  to?: string;
  toExclusive?: boolean;
}

/** SQL conditions putting `column` within the bounds. */
export const windowOf = (column: string, b: RawBounds): string[] => [
  ...(b.from === undefined ? [] : [`${column} >= ${b.from}`]),
  ...(b.to === undefined ? [] : [`${column} ${b.toExclusive ? '<' : '<='} ${b.to}`]),
];

/**
 * Conditions on chunk table `c` (`sample_chunks`, `rollup_chunks_1m`) for the chunks of the series
 * `seriesOf` selects that can hold a sample (bucket) in the bounds: a `start_ts` range on the
 * primary key, then their first and last sample (bucket).
 */
export function chunkPrune(seriesOf: (column: string) => string, b: RawBounds): string[] {
  const before = b.toExclusive ? '<' : '<=';
  return [
    seriesOf('c.series_id'),
    ...(b.from === undefined
      ? []
      : [`c.start_ts > ${b.from} - interval '6 hours'`, `c.last_ts >= ${b.from}`]),
    ...(b.to === undefined ? [] : [`c.start_ts ${before} ${b.to}`, `c.first_ts ${before} ${b.to}`]),
  ];
}

/**
 * The chunk half of a raw read: `SELECT <columns> FROM sample_chunks c ... d` with the samples of
 * the chunks of the series `seriesOf('c.series_id')` selects in the bounds, as `c.series_id`,
 * `d.ts`, `d.value`. Chunks are pruned on the primary key (`start_ts` range) and on their first
 * and last sample; only the slice of a chunk that can hold the bounds is unnested.
 */
export function chunkSamplesFrom(
  seriesOf: (column: string) => string,
  b: RawBounds,
  columns: string,
): string {
  const where = [...chunkPrune(seriesOf, b), ...windowOf('d.ts', b)];
  return `SELECT ${columns}
FROM sample_chunks c
CROSS JOIN LATERAL nexus_chunk_samples(c.first_ts, c.step_us, c.max_jitter_us, c.jitter_us, c.vals,
  ${b.from ?? 'NULL'}, ${b.to ?? 'NULL'}) d
WHERE ${where.join(' AND ')}`;
}

/**
 * Every raw sample (`series_id`, `ts`, `value`) of the series `seriesOf(column)` selects within
 * the bounds: the rows of `samples` and the chunks' samples, as one relation (unordered).
 */
export function rawSamplesSql(seriesOf: (column: string) => string, b: RawBounds = {}): string {
  const rows = [seriesOf('series_id'), ...windowOf('ts', b)];
  return `(SELECT series_id, ts, value FROM samples WHERE ${rows.join(' AND ')}
UNION ALL
${chunkSamplesFrom(seriesOf, b, 'c.series_id, d.ts, d.value')})`;
}

/**
 * The first `limit` raw samples (`ts`, `value`) of one series in the bounds, newest first with
 * `desc` (else oldest first): each half limited on its own (rows through the (series_id, ts) key,
 * chunks in window order, so only the chunks needed are unnested), then merged.
 */
export function firstRawSamplesSql(
  seriesOf: (column: string) => string,
  b: RawBounds,
  dir: 'ASC' | 'DESC',
  limit: string,
): string {
  const rows = [seriesOf('series_id'), ...windowOf('ts', b)];
  const chunks =
    dir === 'DESC' && limit === '1'
      ? newestChunkSampleSql(seriesOf, b)
      : `${chunkSamplesFrom(seriesOf, b, 'd.ts, d.value')} ORDER BY c.start_ts ${dir}, d.ts ${dir} LIMIT ${limit}`;
  return `(SELECT ts, value FROM (
  (SELECT ts, value FROM samples WHERE ${rows.join(' AND ')} ORDER BY ts ${dir} LIMIT ${limit})
  UNION ALL
  (${chunks})
) AS r ORDER BY ts ${dir} LIMIT ${limit})`;
}

/**
 * The newest chunked sample of one series in the bounds, without unnesting when it can: the newest
 * chunk that can hold one has it, and when that chunk ends inside the bounds it is its last element
 * (`vals[n]` at `last_ts`). Unnested only when the chunk runs past the upper bound. (A chunk with a
 * sample at or before the upper bound but none in the bounds means there is none: older chunks are
 * older still.)
 */
function newestChunkSampleSql(seriesOf: (column: string) => string, b: RawBounds): string {
  const prune = chunkPrune(seriesOf, b);
  const inside = b.to === undefined ? 'true' : `c.last_ts ${b.toExclusive ? '<' : '<='} ${b.to}`;
  return `SELECT x.ts, x.value
FROM (SELECT * FROM sample_chunks c WHERE ${prune.join(' AND ')} ORDER BY c.start_ts DESC LIMIT 1) AS c
CROSS JOIN LATERAL (
  SELECT c.last_ts AS ts, c.vals[c.n] AS value WHERE ${inside}
  UNION ALL
  (SELECT d.ts, d.value
   FROM nexus_chunk_samples(c.first_ts, c.step_us, c.max_jitter_us, c.jitter_us, c.vals, ${b.from ?? 'NULL'}, ${b.to ?? 'NULL'}) d
   WHERE NOT (${inside})${windowOf('d.ts', b)
     .map((w) => ` AND ${w}`)
     .join('')}
   ORDER BY d.ts DESC LIMIT 1)
) AS x`;
}

/** Every raw sample, rows and chunks, as one relation (`series_id`, `ts`, `value`): for checks and tools. */
export const ALL_RAW_SAMPLES = rawSamplesSql(() => 'true');

/** Total raw samples stored, rows and chunks, as float8. */
export const COUNT_RAW_SAMPLES_SQL =
  'SELECT ((SELECT count(*) FROM samples) + (SELECT coalesce(sum(n), 0) FROM sample_chunks))::float8 AS n';

/**
 * Share-lock the chunk windows of these times, in ascending order; resolves to those a compaction
 * pass already rebuilt. A write in parts calls it for all its samples first: each part then takes
 * only locks it holds already, so a part never waits for a window while holding a later one (a
 * flush or compaction locks windows exclusively, ascending).
 */
export async function lockChunkWindows(
  tx: TransactionExecutor,
  timestampsMs: ArrayLike<number>,
): Promise<Set<number>> {
  const windows = new Set<number>();
  for (let i = 0; i < timestampsMs.length; i++) windows.add(chunkWindowStart(timestampsMs[i] as number));
  if (windows.size === 0) return new Set();
  const { rows } = await tx.query<{ w: number }>('SELECT w FROM nexus_lock_windows($1::float8[]) AS w', [
    numericArrayLiteral([...windows]),
  ]);
  return new Set(rows.map((r) => r.w));
}

/**
 * Write path, before the samples of a batch (or part) are stored: share-lock the chunk windows
 * they fall in and, when a compaction pass already rebuilt some of them, turn the chunks of these
 * series in those windows back into rows (the windows are marked dirty for the next pass).
 * Resolves to the samples turned back into rows.
 */
export async function prepareChunkWindows(
  tx: TransactionExecutor,
  seriesIds: ArrayLike<number>,
  timestampsMs: ArrayLike<number>,
): Promise<number> {
  const rebuilt = await lockChunkWindows(tx, timestampsMs);
  if (rebuilt.size === 0) return 0;
  const pairs = new Map<string, [number, number]>();
  for (let i = 0; i < timestampsMs.length; i++) {
    const w = chunkWindowStart(timestampsMs[i] as number);
    if (!rebuilt.has(w)) continue;
    const id = seriesIds[i] as number;
    pairs.set(`${id}:${w}`, [id, w]);
  }
  const list = [...pairs.values()];
  const { rows: expanded } = await tx.query<{ n: number }>(
    'SELECT nexus_expand_chunks($1::int4[], $2::float8[])::float8 AS n',
    [numericArrayLiteral(list.map((p) => p[0])), numericArrayLiteral(list.map((p) => p[1]))],
  );
  return expanded[0]?.n ?? 0;
}

/** Starts (ms) of the 6-hour windows that hold raw rows of the default partition older than `beforeMs`. */
export async function defaultPartitionWindows(db: SqlExecutor, beforeMs: number): Promise<number[]> {
  const { rows } = await db.query<{ w: number }>(
    `SELECT DISTINCT (floor(extract(epoch FROM ts) / 21600) * 21600000)::float8 AS w FROM samples_default
WHERE ts < to_timestamp($1::float8 / 1000)`,
    [beforeMs],
  );
  return rows.map((r) => r.w);
}

/**
 * One compaction pass: every chunk window that ended `hotMs` before now and has raw rows (a day
 * partition's windows not rebuilt yet, windows a late write made dirty, rows in the default
 * partition) is rebuilt in its own transaction (`nexus_compact_window`); then each day partition
 * whose windows are all rebuilt and that holds no row any more is dropped. Idempotent, and safe
 * beside writers and other passes (the windows are advisory-locked).
 */
export async function compactRawSamples(
  db: SqlExecutor,
  partitions: PartitionCache,
  options: CompactOptions,
): Promise<CompactResult> {
  const nowMs = options.nowMs ?? Date.now();
  const horizon = chunkWindowStart(nowMs - options.hotMs);
  const clean = new Set(
    (
      await db.query<{ w: number }>(
        `SELECT (extract(epoch FROM start_ts) * 1000)::float8 AS w FROM chunk_windows
WHERE NOT dirty AND start_ts < to_timestamp($1::float8 / 1000)`,
        [horizon],
      )
    ).rows.map((r) => r.w),
  );
  const todo = new Set<number>();
  const partitionList = await listPartitions(db);
  const days = partitionList.filter((p) => p.parent === 'samples' && p.dayMs < horizon);
  for (const p of days) {
    for (let w = p.dayMs; w < p.dayMs + DAY_MS && w + CHUNK_WINDOW_MS <= horizon; w += CHUNK_WINDOW_MS) {
      if (!clean.has(w)) todo.add(w);
    }
  }
  const dirty = await db.query<{ w: number }>(
    `SELECT (extract(epoch FROM start_ts) * 1000)::float8 AS w FROM chunk_windows
WHERE dirty AND start_ts < to_timestamp($1::float8 / 1000)`,
    [horizon],
  );
  for (const r of dirty.rows) todo.add(r.w);
  for (const w of await defaultPartitionWindows(db, horizon)) todo.add(w);

  const result: CompactResult = { windows: 0, samples: 0, droppedPartitions: [] };
  for (const w of [...todo].sort((a, b) => a - b)) {
    const { rows } = await db.query<{ n: number }>(
      'SELECT nexus_compact_window(to_timestamp($1::float8 / 1000))::float8 AS n',
      [w],
    );
    const samples = rows[0]?.n ?? 0;
    result.windows += 1;
    result.samples += samples;
    clean.add(w);
    options.onWindow?.({ startMs: w, samples });
  }
  const wholeDay = (dayMs: number): boolean => {
    for (let w = dayMs; w < dayMs + DAY_MS; w += CHUNK_WINDOW_MS) if (!clean.has(w)) return false;
    return true;
  };
  // Each emptied day partition goes in a transaction of its own, under the day's window locks
  // (checked and dropped in one function: rows a writer is adding right now would otherwise go
  // with it). Raw first, then 1-minute (its rows went when the windows were compacted,
  // minute-chunks.ts); a 1-minute partition whose raw one went in an earlier pass goes too.
  const drop = async (fn: string, parent: 'samples' | 'samples_1m', dayMs: number): Promise<void> => {
    const { rows } = await db.query<{ dropped: boolean }>(
      `SELECT ${fn}(to_timestamp($1::float8 / 1000)) AS dropped`,
      [dayMs],
    );
    if (rows[0]?.dropped) result.droppedPartitions.push(partitionName(parent, dayMs));
  };
  const rawDays = new Set(days.map((p) => p.dayMs));
  const closedDays = new Set(
    partitionList
      .filter((p) => (p.parent === 'samples' || p.parent === 'samples_1m') && p.dayMs + DAY_MS <= horizon)
      .map((p) => p.dayMs),
  );
  for (const dayMs of [...closedDays].sort((a, b) => a - b)) {
    if (!wholeDay(dayMs)) continue;
    if (rawDays.has(dayMs)) await drop('nexus_drop_compacted_day', 'samples', dayMs);
    await drop('nexus_drop_compacted_minutes', 'samples_1m', dayMs);
    partitions.forget([dayMs]);
  }
  return result;
}

/** Delete the chunks (and rebuilt-window marks) of windows that end at or before `cutoffMs`. */
export async function trimChunks(db: SqlExecutor, cutoffMs: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT nexus_trim_chunks($1::timestamptz)::float8 AS n', [
    new Date(cutoffMs).toISOString(),
  ]);
  return rows[0]?.n ?? 0;
}

/** End (ms) of the day holding the newest chunked sample, or undefined when there are no chunks. */
export async function newestChunkDayEnd(db: SqlExecutor): Promise<number | undefined> {
  const { rows } = await db.query<{ w: number | null }>(
    'SELECT (extract(epoch FROM max(start_ts)) * 1000)::float8 AS w FROM sample_chunks',
  );
  const w = rows[0]?.w;
  return w === null || w === undefined ? undefined : Math.floor(w / DAY_MS) * DAY_MS + DAY_MS;
}
