/**
 * Compacted chunks of the SQLite sample store: one row of `chunks` per series and 6-hour window
 * (samples encoded by chunk-codec.ts) once the window is past the hot window. This module reads a
 * series' samples from rows and chunks as one, finds a stored value in a chunk (the write path's
 * duplicate check), folds rows into the `rollups` table, and compacts one series.
 */
import { decodeChunk, encodeChunk } from './chunk-codec.js';

/** Width of a compaction window: 6 hours (4 a day, so a window never crosses a day). */
export const WINDOW_MS = 6 * 3_600_000;

/** The statements the store runs for this module (prepared and cached by the store). */
export interface SqliteAccess {
  all<R>(sql: string, values?: unknown[]): R[];
  /** Run a statement; its number of changed rows. */
  run(sql: string, values?: unknown[]): number;
}

/** Samples of one series, in the order asked. */
export interface SeriesSamples {
  ts: number[];
  values: number[];
}

interface ChunkRow {
  n: number;
  data: Uint8Array;
}

/** Where a chunk is and how many samples it holds (its bytes are read only when needed). */
interface ChunkPlace {
  window_start: number;
  n: number;
}

/** The chunks of a series that may hold samples in [from, to], in window order. */
function chunksIn(db: SqliteAccess, seriesId: number, from: number, to: number, desc: boolean): ChunkPlace[] {
  return db.all<ChunkPlace>(
    `SELECT window_start, n FROM chunks
     WHERE series_id = ? AND window_start > ? AND window_start <= ? AND last_ts >= ? AND first_ts <= ?
     ORDER BY window_start ${desc ? 'DESC' : 'ASC'}`,
    [seriesId, from - WINDOW_MS, to, from, to],
  );
}

/** The bytes of one chunk. */
function chunkData(db: SqliteAccess, seriesId: number, windowStart: number): Uint8Array {
  return db.all<{ data: Uint8Array }>('SELECT data FROM chunks WHERE series_id = ? AND window_start = ?', [
    seriesId,
    windowStart,
  ])[0]!.data;
}

/** How a bucket folded into `rollups` joins the one already there for its (res, series, bucket). */
const MERGE_INTO_ROLLUPS = `ON CONFLICT (res, series_id, bucket) DO UPDATE SET
  min = min(rollups.min, excluded.min), max = max(rollups.max, excluded.max),
  sum = rollups.sum + excluded.sum, count = rollups.count + excluded.count,
  last = CASE WHEN excluded.last_ts > rollups.last_ts THEN excluded.last ELSE rollups.last END,
  last_ts = max(rollups.last_ts, excluded.last_ts)`;

/** Start of the window holding `ts`. */
export function windowOf(ts: number): number {
  return Math.floor(ts / WINDOW_MS) * WINDOW_MS;
}

/**
 * The samples of one series in [from, to], rows and chunks as one, ascending or (`desc`) newest
 * first, at most `limit` of them (-1: all). Each side is read with the limit: a sample among the
 * first `limit` of the merge is among the first `limit` of its side.
 */
export function seriesSamples(
  db: SqliteAccess,
  seriesId: number,
  from: number,
  to: number,
  desc: boolean,
  limit: number,
): SeriesSamples {
  const dir = desc ? 'DESC' : 'ASC';
  const rows = db.all<{ ts: number; value: number }>(
    `SELECT ts, value FROM samples WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts ${dir} LIMIT ?`,
    [seriesId, from, to, limit],
  );
  const chunks = chunksIn(db, seriesId, from, to, desc);
  const rowTs = rows.map((r) => r.ts);
  const rowValues = rows.map((r) => r.value);
  if (chunks.length === 0) return { ts: rowTs, values: rowValues };

  const cts: number[] = [];
  const cvs: number[] = [];
  for (const c of chunks) {
    const d = decodeChunk(chunkData(db, seriesId, c.window_start), c.n);
    for (let k = 0; k < c.n; k++) {
      const i = desc ? c.n - 1 - k : k;
      const t = d.ts[i]!;
      if (t < from || t > to) continue;
      cts.push(t);
      cvs.push(d.values[i]!);
    }
    if (limit >= 0 && cts.length >= limit) break;
  }
  // Merge the two ordered lists.
  const ts: number[] = [];
  const values: number[] = [];
  const max = limit < 0 ? Infinity : limit;
  let a = 0;
  let b = 0;
  while (ts.length < max && (a < rowTs.length || b < cts.length)) {
    const takeRow =
      b >= cts.length || (a < rowTs.length && (desc ? rowTs[a]! > cts[b]! : rowTs[a]! < cts[b]!));
    if (takeRow) {
      ts.push(rowTs[a]!);
      values.push(rowValues[a++]!);
    } else {
      ts.push(cts[b]!);
      values.push(cvs[b++]!);
    }
  }
  return { ts, values };
}

/** A rollup bucket being read: the aggregate's parts, mergeable across rows, chunks and folds. */
export interface Bucket {
  bucket: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
  lastTs: number;
}

/** Add `b` (another part of the same bucket) into `into`. */
export function mergeBucket(into: Bucket, b: Bucket): void {
  into.min = Math.min(into.min, b.min);
  into.max = Math.max(into.max, b.max);
  into.sum += b.sum;
  into.count += b.count;
  if (b.lastTs > into.lastTs) {
    into.last = b.last;
    into.lastTs = b.lastTs;
  }
}

/**
 * The `bucketMs` buckets (a divisor of the window: 1 minute) of one series' chunks whose start
 * lies in [from, to], in order, at least the first `limit` of them (whole chunks are read). Sums
 * are taken as SQLite's `sum()` takes them (Kahan-Babuska-Neumaier, in time order), so a bucket
 * reads the same before and after its rows became a chunk.
 */
export function chunkBuckets(
  db: SqliteAccess,
  seriesId: number,
  bucketMs: number,
  from: number,
  to: number,
  desc: boolean,
  limit: number,
): Bucket[] {
  // A bucket starting at or before `to` may hold samples up to `to + bucketMs`.
  const chunks = chunksIn(db, seriesId, from, to + bucketMs, desc);
  const out: Bucket[] = [];
  for (const c of chunks) {
    const d = decodeChunk(chunkData(db, seriesId, c.window_start), c.n);
    const buckets: Bucket[] = [];
    let current: Bucket | undefined;
    let err = 0;
    const close = (): void => {
      if (current === undefined) return;
      if (Number.isFinite(err)) current.sum += err;
      if (current.bucket >= from && current.bucket <= to) buckets.push(current);
    };
    for (let i = 0; i < c.n; i++) {
      const t = d.ts[i]!;
      const v = d.values[i]!;
      const bucket = Math.floor(t / bucketMs) * bucketMs;
      if (current === undefined || current.bucket !== bucket) {
        close();
        current = { bucket, min: v, max: v, sum: v, count: 1, last: v, lastTs: t };
        err = 0;
        continue;
      }
      const s = current.sum;
      const sum = s + v;
      err += Math.abs(s) > Math.abs(v) ? s - sum + v : v - sum + s;
      current.sum = sum;
      current.min = Math.min(current.min, v);
      current.max = Math.max(current.max, v);
      current.count += 1;
      current.last = v;
      current.lastTs = t;
    }
    close();
    out.push(...(desc ? buckets.reverse() : buckets));
    if (limit >= 0 && out.length >= limit) break;
  }
  return out;
}

/** Decoded chunks of one write, by `series:window`, so a batch decodes each chunk once. */
export type ChunkCache = Map<string, SeriesSamples | null>;

/** The value stored in a chunk of `seriesId` at exactly `ts`, or undefined. */
export function chunkValue(
  db: SqliteAccess,
  seriesId: number,
  ts: number,
  cache: ChunkCache,
): number | undefined {
  const window = windowOf(ts);
  const key = `${seriesId}:${window}`;
  let chunk = cache.get(key);
  if (chunk === undefined) {
    const row = db.all<ChunkRow>('SELECT n, data FROM chunks WHERE series_id = ? AND window_start = ?', [
      seriesId,
      window,
    ])[0];
    chunk = row === undefined ? null : decodeChunk(row.data, row.n);
    cache.set(key, chunk);
  }
  if (chunk === null) return undefined;
  // Binary search: chunk times ascend.
  let lo = 0;
  let hi = chunk.ts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = chunk.ts[mid]!;
    if (t === ts) return chunk.values[mid];
    if (t < ts) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/**
 * Fold the buckets (default 1m and 1h) of the rows `where` selects (a condition on `samples`, with
 * its `params`) into `rollups`, merged with the buckets there. The caller deletes the rows after.
 */
export function foldRows(
  db: SqliteAccess,
  where: string,
  params: unknown[],
  resolutions: readonly number[] = [60_000, 3_600_000],
): void {
  for (const res of resolutions) {
    db.run(
      `INSERT INTO rollups (res, series_id, bucket, min, max, sum, count, last, last_ts)
       SELECT ?, g.series_id, g.bucket, g.min, g.max, g.sum, g.count,
         (SELECT value FROM samples s WHERE s.series_id = g.series_id AND s.ts = g.last_ts), g.last_ts
       FROM (SELECT series_id, floor(ts / ?) * ? AS bucket, min(value) AS min, max(value) AS max,
               sum(value) AS sum, count(*) AS count, max(ts) AS last_ts
             FROM samples WHERE ${where} GROUP BY 1, 2) AS g
       WHERE true
       ${MERGE_INTO_ROLLUPS}`,
      [res, res, res, ...params],
    );
  }
}

/**
 * Move the rows of `seriesId` older than `horizon` (a window start) into its chunks: each window's
 * rows merged with the chunk already there (late samples), the rows' hourly buckets folded into
 * `rollups`, the rows deleted. Adds to `held` the samples each rebuilt window's chunk now holds;
 * returns how many rows moved.
 */
export function compactSeries(
  db: SqliteAccess,
  seriesId: number,
  horizon: number,
  held: Map<number, number>,
): number {
  const rows = db.all<{ ts: number; value: number }>(
    'SELECT ts, value FROM samples WHERE series_id = ? AND ts < ? ORDER BY ts',
    [seriesId, horizon],
  );
  if (rows.length === 0) return 0;
  let start = 0;
  while (start < rows.length) {
    const window = windowOf(rows[start]!.ts);
    let end = start;
    while (end < rows.length && rows[end]!.ts < window + WINDOW_MS) end++;
    const ts = rows.slice(start, end).map((r) => r.ts);
    const values = rows.slice(start, end).map((r) => r.value);
    const existing = db.all<ChunkRow>('SELECT n, data FROM chunks WHERE series_id = ? AND window_start = ?', [
      seriesId,
      window,
    ])[0];
    const merged =
      existing === undefined
        ? { ts, values }
        : mergeSorted(decodeChunk(existing.data, existing.n), { ts, values });
    const n = merged.ts.length;
    db.run(
      `INSERT INTO chunks (series_id, window_start, n, first_ts, last_ts, last_value, data)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (series_id, window_start) DO UPDATE SET n = excluded.n, first_ts = excluded.first_ts,
         last_ts = excluded.last_ts, last_value = excluded.last_value, data = excluded.data`,
      [
        seriesId,
        window,
        n,
        merged.ts[0],
        merged.ts[n - 1],
        merged.values[n - 1],
        encodeChunk(merged.ts, merged.values),
      ],
    );
    held.set(window, (held.get(window) ?? 0) + n);
    start = end;
  }
  // The hourly buckets only: a chunk's minutes are computed from it when read (a row a minute
  // would cost more than the chunk), and folded when retention deletes the chunk.
  foldRows(db, 'series_id = ? AND ts < ?', [seriesId, horizon], [3_600_000]);
  db.run('DELETE FROM samples WHERE series_id = ? AND ts < ?', [seriesId, horizon]);
  return rows.length;
}

/**
 * Fold the 1-minute buckets of the chunks that start before `bound` into `rollups` (retention,
 * before it deletes them; their hourly buckets were folded when they were written).
 */
export function foldChunkMinutes(db: SqliteAccess, bound: number): void {
  const ids = db.all<{ series_id: number }>('SELECT DISTINCT series_id FROM chunks WHERE window_start < ?', [
    bound,
  ]);
  for (const { series_id: id } of ids) {
    for (const b of chunkBuckets(db, id, 60_000, -Infinity, bound - 1, false, -1)) {
      db.run(
        `INSERT INTO rollups (res, series_id, bucket, min, max, sum, count, last, last_ts)
         VALUES (60000, ?, ?, ?, ?, ?, ?, ?, ?)
         ${MERGE_INTO_ROLLUPS}`,
        [id, b.bucket, b.min, b.max, b.sum, b.count, b.last, b.lastTs],
      );
    }
  }
}

/** Two ascending sample lists with no time in common, as one. */
function mergeSorted(a: SeriesSamples, b: SeriesSamples): SeriesSamples {
  const ts: number[] = [];
  const values: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.ts.length || j < b.ts.length) {
    if (j >= b.ts.length || (i < a.ts.length && a.ts[i]! < b.ts[j]!)) {
      ts.push(a.ts[i]!);
      values.push(a.values[i++]!);
    } else {
      ts.push(b.ts[j]!);
      values.push(b.values[j++]!);
    }
  }
  return { ts, values };
}
