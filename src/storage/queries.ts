/**
 * Read-side SQL of the sample store, shared by the PGlite and PostgreSQL adapters: statement
 * builders that return text + parameters, and mappers from rows to port types. Every column that
 * the two drivers would decode differently (int8, timestamptz) is cast to float8 in SQL.
 */
import {
  type Resolution,
  type SampleQuery,
  type SeriesFilter,
  type StoredSeries,
  type StoredDeadLetter,
  type StoredGpu,
  type StoredSample,
  chooseResolution,
} from '../ports/sample-store.js';
import { COUNT_RAW_SAMPLES_SQL, type RawBounds, firstRawSamplesSql, rawSamplesSql } from './chunks.js';
import { bucketStart, rollupLevel } from './rollups.js';
import { minuteRollupSql } from './minute-chunks.js';

/** Default `limit` of {@link SampleQuery}. */
export const DEFAULT_SAMPLE_LIMIT = 1000;
/** Default `limit` of dead-letter listings. */
export const DEFAULT_DEAD_LETTER_LIMIT = 1000;

/** A statement ready for `SqlExecutor.query`. */
export interface Statement {
  text: string;
  params: unknown[];
}

/** Row shape of {@link buildSeriesByIds}: a series, its columns as named in SQL. */
export interface SeriesRow {
  id: number;
  cluster_id: string;
  hostname: string;
  gpu_id: string;
  uuid: string;
  device: string;
  model_name: string;
  metric: string;
  container: string;
  pod: string;
  namespace: string;
  labels: Record<string, string>;
}

/**
 * Row shape of {@link buildSampleQuery}: the series id instead of its columns, which the store
 * joins from its series cache ({@link buildSeriesByIds}). A thousand full rows cost the driver
 * three times as much to parse (labels are JSON) as the query costs the database.
 */
export interface NarrowSampleRow {
  series_id: number;
  ts_ms: number;
  value: number;
  /** Rollup resolutions only. */
  agg_min?: number;
  agg_max?: number;
  agg_count?: number;
  agg_last?: number;
}

/** The series rows with these ids. */
export function buildSeriesByIds(ids: number[]): Statement {
  return {
    text: `SELECT id, cluster_id, hostname, gpu_id, uuid, device, model_name, metric, container, pod, namespace, labels
FROM series WHERE id = ANY($1::int4[])`,
    params: [ids],
  };
}

/** A sample query statement and the resolution it reads. */
export interface SampleStatement extends Statement {
  resolution: Resolution;
}

/** Row shape of {@link buildListGpus}. */
export interface GpuRow {
  cluster_id: string;
  hostname: string;
  gpu_id: string;
  uuid: string;
  device: string;
  model_name: string;
}

/** Row shape of {@link buildListDeadLetters}. */
export interface DeadLetterRow {
  id: number;
  source: string;
  line: number;
  raw: string;
  reason: string;
  detail: string;
  received_ms: number;
}

function normaliseLimit(limit: number | undefined, fallback: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.max(0, Math.floor(limit));
}

/**
 * Samples of one GPU, from raw samples or a rollup table as {@link chooseResolution} decides
 * (`nowMs` is the "now" of `auto` with an open end). Ties on time are broken by metric then
 * series id, so pages are stable. An empty `metrics` array means no metric filter. Only the
 * GPU's own series are read, or with `migInstance` only that MIG instance's. At a rollup
 * resolution the start bound is rounded down to its bucket and only the rollup table is read
 * (time bounds are plain parameters, so the planner prunes its partitions).
 */
export function buildSampleQuery(
  q: SampleQuery,
  nowMs: number = Date.now(),
  saturate = false,
): SampleStatement {
  const resolution = chooseResolution(q, nowMs);
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const where: string[] = [];
  if ('uuid' in q.gpu) {
    where.push(`se.uuid = ${p(q.gpu.uuid)}`);
  } else {
    where.push(
      `se.cluster_id = ${p(q.gpu.clusterId)}`,
      `se.hostname = ${p(q.gpu.hostname)}`,
      `se.gpu_id = ${p(q.gpu.gpuId)}`,
    );
  }
  if (q.metrics && q.metrics.length > 0) where.push(`se.metric = ANY(${p(q.metrics)}::text[])`);
  // A MIG instance's series carry its GPU_I_ID label; the GPU's own series carry none (or an empty one).
  if (q.migInstance !== undefined) where.push(`se.labels->>'GPU_I_ID' = ${p(q.migInstance)}`);
  else where.push(`coalesce(se.labels->>'GPU_I_ID', '') = ''`);
  const dir = q.order === 'asc' ? 'ASC' : 'DESC';
  const columns = 'se.id AS series_id';

  if (resolution === 'raw') {
    // Each series' first `limit` samples in the window (one index range scan each on the
    // (series_id, ts) key), then the GPU's first `limit` overall. A plain join must read every
    // sample of the GPU and sort them: 1.3 s against 2 ms for the latest 10 of 870k samples.
    // Rows and chunks (chunks.ts) alike: each half limited on its own, then merged.
    const bounds: RawBounds = {};
    if (q.startMs !== undefined) bounds.from = `to_timestamp(${p(q.startMs)}::float8 / 1000)`;
    if (q.endMs !== undefined) bounds.to = `to_timestamp(${p(q.endMs)}::float8 / 1000)`;
    const limit = p(normaliseLimit(q.limit, DEFAULT_SAMPLE_LIMIT));
    const first = firstRawSamplesSql((column) => `${column} = se.id`, bounds, dir, limit);
    return {
      resolution,
      text: `SELECT ${columns}, se.metric AS sort_metric, sa.ts AS sort_ts,
       (extract(epoch FROM sa.ts) * 1000)::float8 AS ts_ms, sa.value
FROM series se
CROSS JOIN LATERAL ${first} sa
WHERE ${where.join(' AND ')}
ORDER BY sa.ts ${dir}, se.metric ${dir}, se.id ${dir}
LIMIT ${limit}`,
      params,
    };
  }

  const level = rollupLevel(resolution);
  const bounds: RawBounds = {};
  if (q.startMs !== undefined) {
    bounds.from = `to_timestamp(${p(bucketStart(q.startMs, level.bucketMs))}::float8 / 1000)`;
  }
  if (q.endMs !== undefined) bounds.to = `to_timestamp(${p(q.endMs)}::float8 / 1000)`;
  const limit = p(normaliseLimit(q.limit, DEFAULT_SAMPLE_LIMIT));
  // 1-minute buckets past the hot window are chunks (minute-chunks.ts): read per series, rows and
  // chunks as one. The hourly level is rows only.
  const buckets =
    level.table === 'samples_1m'
      ? `CROSS JOIN LATERAL ${minuteRollupSql((column) => `${column} = se.id`, bounds, saturate)} r`
      : `JOIN ${level.table} r ON r.series_id = se.id`;
  if (level.table !== 'samples_1m') {
    if (bounds.from !== undefined) where.push(`r.bucket >= ${bounds.from}`);
    if (bounds.to !== undefined) where.push(`r.bucket <= ${bounds.to}`);
  }
  return {
    resolution,
    text: `SELECT ${columns},
       (extract(epoch FROM r.bucket) * 1000)::float8 AS ts_ms, r.sum / r.count AS value,
       r.min AS agg_min, r.max AS agg_max, r.count::float8 AS agg_count, r.last AS agg_last
FROM series se ${buckets}
WHERE ${where.join(' AND ')}
ORDER BY r.bucket ${dir}, se.metric ${dir}, se.id ${dir}
LIMIT ${limit}`,
    params,
  };
}

/**
 * A raw {@link buildSampleQuery} answered as one JSON text (`rows`: an array of
 * `[series_id, ts_ms, value]` in the query's order) instead of a row per sample: PGlite's driver
 * spent about as long decoding a GPU-hour's 1,200 rows as the database spent finding them. Raw
 * values are finite (a table constraint), so JSON carries them exactly.
 */
export function asJsonRows(s: SampleStatement, order: SampleQuery['order']): Statement {
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  return {
    text: `SELECT coalesce(json_agg(json_build_array(x.series_id, x.ts_ms, x.value)
  ORDER BY x.sort_ts ${dir}, x.sort_metric ${dir}, x.series_id ${dir}), '[]')::text AS rows
FROM (${s.text}) AS x`,
    params: s.params,
  };
}

/**
 * The newest sample of every series (optionally in one cluster): one index probe per series on the
 * (series_id, ts) primary key, so the cost grows with the number of series, not of samples. Rows
 * are {@link NarrowSampleRow}s, joined with their series in memory like sample queries.
 */
export function buildLatestSamples(clusterId?: string): Statement {
  const filter = clusterId === undefined ? '' : 'WHERE se.cluster_id = $1';
  return {
    text: `SELECT se.id AS series_id, (extract(epoch FROM sa.ts) * 1000)::float8 AS ts_ms, sa.value
FROM series se
CROSS JOIN LATERAL ${firstRawSamplesSql((column) => `${column} = se.id`, {}, 'DESC', '1')} sa
${filter}
ORDER BY se.cluster_id, se.hostname, se.gpu_id, se.metric, se.id`,
    params: clusterId === undefined ? [] : [clusterId],
  };
}

/** Series columns of {@link SeriesFilter} fields, in SQL. */
export const SERIES_FILTER_COLUMNS = {
  clusterId: 'cluster_id',
  hostname: 'hostname',
  gpuId: 'gpu_id',
  uuid: 'uuid',
  device: 'device',
  modelName: 'model_name',
  container: 'container',
  pod: 'pod',
  namespace: 'namespace',
} as const;

/** LIKE pattern matching text that starts with `prefix` (`\` is LIKE's default escape). */
function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
}

/**
 * The series rows a {@link SeriesFilter} selects (any samples or none), ordered by id. Each given
 * field is an equality on an indexed column (metric, GPU, workload), so the planner uses
 * `series_gpu_idx`, `series_uuid_idx` or `series_workload_idx` when one applies.
 */
export function buildSelectSeries(filter: SeriesFilter): Statement {
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const where: string[] = [];
  if (filter.metrics !== undefined) where.push(`metric = ANY(${p([...filter.metrics])}::text[])`);
  if (filter.metricPrefix !== undefined && filter.metricPrefix !== '') {
    where.push(`metric LIKE ${p(likePrefix(filter.metricPrefix))}`);
  }
  for (const [field, column] of Object.entries(SERIES_FILTER_COLUMNS)) {
    const value = filter[field as keyof typeof SERIES_FILTER_COLUMNS];
    if (value !== undefined) where.push(`${column} = ${p(value)}`);
  }
  for (const [name, value] of Object.entries(filter.labels ?? {})) {
    where.push(`coalesce(labels ->> ${p(name)}, '') = ${p(value)}`);
  }
  return {
    text: `SELECT id, cluster_id, hostname, gpu_id, uuid, device, model_name, metric, container, pod, namespace, labels
FROM series${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
ORDER BY id`,
    params,
  };
}

/** Row shape of {@link buildLatestSeriesSamples}. */
export interface SeriesSampleRow {
  series_id: number;
  ts_ms: number;
  value: number;
}

/** Bounds of the series sample statements: [$2, $3] in ms since epoch. */
const SERIES_WINDOW: RawBounds = {
  from: 'to_timestamp($2::float8 / 1000)',
  to: 'to_timestamp($3::float8 / 1000)',
};

/**
 * The newest sample of each of these series in [startMs, endMs] (one index probe per series on
 * the (series_id, ts) key), as {@link SeriesSampleRow}s by series.
 */
export function buildLatestSeriesSamples(ids: readonly number[], startMs: number, endMs: number): Statement {
  return {
    text: `SELECT s.id AS series_id, (extract(epoch FROM sa.ts) * 1000)::float8 AS ts_ms, sa.value
FROM unnest($1::int4[]) AS s(id)
CROSS JOIN LATERAL ${firstRawSamplesSql((column) => `${column} = s.id`, SERIES_WINDOW, 'DESC', '1')} sa
ORDER BY s.id`,
    params: [[...ids], startMs, endMs],
  };
}

/**
 * Raw samples of these series in [startMs, endMs], time ascending per series, as one text
 * (`samples`, null when none), read by {@link parseSeriesSamples}:
 * per series its id, its sample count and its samples in hex, separated by spaces. The hex is each
 * sample's 16 bytes in time order: its time as PostgreSQL's binary `timestamptz` (int64
 * microseconds since 2000-01-01, exact), then its value's float8 bits (exact), both big-endian.
 * A driver decodes one text far faster than a row per sample, and PostgreSQL writes these bytes in
 * about half the time it formats the same numbers as decimal text (docs/performance.md, "Series
 * reads with a kept plan").
 *
 * With `limit`, at most that many rows are read (the scan stops there) and aggregated, and
 * `over` says whether the window holds that many samples: the caller refuses it then, and
 * `samples` is null. So a window far over the limit costs `limit` rows, not a sort of the whole
 * window; one well under it is read once (counting it first, in a materialised CTE, cost a fifth
 * of the read). Through the function, a window whose rows and chunk slices could reach the limit
 * is also counted exactly, stopping at the limit.
 *
 * Up to {@link PLANNED_READ_MAX_SERIES} series read through `nexus_series_read` (migration 12:
 * its plan kept per connection, and the chunks' samples decoded here, see {@link parseSeriesRead})
 * unless `planned` is false (TimescaleDB, whose chunk exclusion wants the values at plan time);
 * more get the statement itself. Either way read the row with {@link parseSeriesRead}.
 */
export function buildSeriesSamples(
  ids: readonly number[],
  startMs: number,
  endMs: number,
  limit?: number,
  planned = true,
): Statement {
  if (planned && ids.length <= PLANNED_READ_MAX_SERIES) {
    return seriesSamplesCall('$1::int4[]', [[...ids]], startMs, endMs, limit);
  }
  const params: unknown[] = [[...ids], startMs, endMs];
  const raw = rawSamplesSql((column) => `${column} = ANY($1::int4[])`, SERIES_WINDOW);
  const grouped = (from: string): string => `FROM (SELECT series_id, count(*) AS n,
        encode(string_agg(timestamptz_send(ts) || float8send(value), ''::bytea ORDER BY ts), 'hex') AS pairs
  FROM ${from} AS r
  GROUP BY series_id) AS g`;
  const all = `string_agg(series_id::text || ' ' || n::text || ' ' || pairs, ' ' ORDER BY series_id)`;
  if (limit === undefined) return { text: `SELECT ${all} AS samples\n${grouped(raw)}`, params };
  params.push(limit);
  return {
    text: `SELECT coalesce(sum(n), 0) >= $4::int8 AS over,
  CASE WHEN coalesce(sum(n), 0) >= $4::int8 THEN NULL ELSE ${all} END AS samples
${grouped(`(SELECT series_id, ts, value FROM ${raw} AS w LIMIT $4::int8)`)}`,
    params,
  };
}

/**
 * Most series a read sends through `nexus_series_read` (migration 12), whose plan is made once
 * per connection: a generic plan, right for the index probes of a few series, and planning was a
 * third of a GPU-hour's read. Reads of more series get a statement planned for their window.
 */
export const PLANNED_READ_MAX_SERIES = 64;

/** Filter fields `nexus_gpu_series_read` (migration 12) takes; any other needs a planned statement. */
const GPU_FUNCTION_FIELDS: ReadonlySet<string> = new Set([
  'clusterId',
  'hostname',
  'gpuId',
  'uuid',
  'metrics',
  'labels',
]);

/**
 * The raw samples of every series of one GPU that `filter` selects, as {@link buildSeriesSamples}
 * writes them for those series' ids, in one statement: the ids are looked up inside it. For a
 * filter that pins one GPU (see {@link pinsOneGpu}): one GPU's series are index probes however many
 * pods and containers add (the generic plan stays right). A filter of UUID or cluster, host and
 * index, metrics and labels goes through `nexus_gpu_series_read`, whose plan, lookup included,
 * is kept per connection; other fields make the lookup an argument of `nexus_series_read`. Read
 * the row with {@link parseSeriesRead}.
 */
export function buildGpuSeriesSamples(
  filter: SeriesFilter,
  startMs: number,
  endMs: number,
  limit?: number,
): Statement {
  if (!pinsOneGpu(filter)) throw new Error('buildGpuSeriesSamples: the filter does not pin one GPU');
  const fields = Object.entries(filter).filter(([, value]) => value !== undefined);
  if (fields.every(([name]) => GPU_FUNCTION_FIELDS.has(name))) {
    const labels = Object.entries(filter.labels ?? {});
    return {
      text: `SELECT ${READ_COLUMNS}
FROM nexus_gpu_series_read($1::text, $2::text, $3::text, $4::text, $5::text[], $6::text[], $7::text[],
  $8::float8, $9::float8, $10::int8) AS f`,
      params: [
        filter.clusterId ?? null,
        filter.hostname ?? null,
        filter.gpuId ?? null,
        filter.uuid ?? null,
        filter.metrics === undefined ? null : [...filter.metrics],
        labels.map(([name]) => name),
        labels.map(([, value]) => value),
        startMs,
        endMs,
        limit ?? null,
      ],
    };
  }
  const { text, params } = buildSelectSeries(filter);
  return seriesSamplesCall(`ARRAY(SELECT id FROM (${text}) AS s)`, params, startMs, endMs, limit);
}

/** Whether `filter` selects the series of at most one GPU (its UUID, or its cluster, host and index). */
export function pinsOneGpu(filter: SeriesFilter): boolean {
  return (
    filter.uuid !== undefined ||
    (filter.clusterId !== undefined && filter.hostname !== undefined && filter.gpuId !== undefined)
  );
}

/** `nexus_series_read` of the ids `idsSql` gives (its parameters `params`, numbered first). */
function seriesSamplesCall(
  idsSql: string,
  params: unknown[],
  startMs: number,
  endMs: number,
  limit: number | undefined,
): Statement {
  const n = params.length;
  return {
    text: `SELECT ${READ_COLUMNS}
FROM nexus_series_read(${idsSql}, $${n + 1}::float8, $${n + 2}::float8, $${n + 3}::int8) AS f`,
    params: [...params, startMs, endMs, limit ?? null],
  };
}

/** The columns of `nexus_series_read` and `nexus_gpu_series_read` as a {@link SeriesReadRow}. */
const READ_COLUMNS = 'f.o_over AS over, f.o_samples AS samples, f.o_chunks AS chunks, f.o_bounds AS bounds';

/**
 * A row of the series read statements: `samples` as {@link parseSeriesSamples} reads it, and from
 * the functions (migration 12) the chunks' slices and the window's bounds that
 * {@link parseSeriesRead} turns into samples; `over` when the window holds the read's `limit`.
 */
export interface SeriesReadRow {
  over?: boolean | null;
  samples: string | null;
  chunks?: string | null;
  bounds?: string | null;
}

/** One series' samples from {@link parseSeriesSamples}: times in ms since epoch, ascending. */
export interface SeriesSamples {
  seriesId: number;
  timestamps: number[];
  values: number[];
}

/** Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const PG_EPOCH_US = 946_684_800_000_000;

/**
 * The text of {@link buildSeriesSamples}, as series. A time becomes milliseconds since 1970 as the
 * row queries' `(extract(epoch FROM ts) * 1000)::float8` gives it: the double nearest to the exact
 * decimal (whole microseconds over 1000, one correctly rounded division; more than 2^52
 * microseconds from 2000, outside 1857-2142, read from its decimal text).
 */
export function parseSeriesSamples(text: string | null | undefined): SeriesSamples[] {
  if (!text) return [];
  const parts = text.split(' ');
  const out: SeriesSamples[] = [];
  for (let i = 0; i + 2 < parts.length; i += 3) {
    const n = Number(parts[i + 1]);
    const bytes = Buffer.from(parts[i + 2]!, 'hex');
    if (bytes.length !== n * 16) {
      throw new Error(`series samples: ${bytes.length} bytes for ${n} samples`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const timestamps = new Array<number>(n);
    const values = new Array<number>(n);
    for (let k = 0, at = 0; k < n; k++, at += 16) {
      const high = view.getInt32(at);
      // Within 2^52 us of 2000 (1857-2142) the sum is exact; elsewhere BigInt and decimal text.
      timestamps[k] =
        high >= -(2 ** 20) && high < 2 ** 20
          ? (high * 2 ** 32 + view.getUint32(at + 4) + PG_EPOCH_US) / 1000
          : exactMs(view.getBigInt64(at));
      values[k] = view.getFloat64(at + 8);
    }
    out.push({ seriesId: Number(parts[i]), timestamps, values });
  }
  return out;
}

/**
 * The samples of a {@link SeriesReadRow}: its rows' samples and, from the functions, its chunks'
 * slices, kept within the window's bounds, each series' samples in time order, series by id (what
 * the statement answers for the same read, where SQL unnests and filters the chunks itself).
 */
export function parseSeriesRead(row: SeriesReadRow | undefined): SeriesSamples[] {
  const fromRows = parseSeriesSamples(row?.samples);
  if (!row?.chunks) return fromRows;
  if (!row.bounds) throw new Error('series read: chunk slices without the window bounds');
  const bounds = Buffer.from(row.bounds, 'hex');
  const fromUs = bounds.readBigInt64BE(0);
  const toUs = bounds.readBigInt64BE(8);
  const pieces = new Map<number, SeriesSamples[]>();
  for (const s of fromRows) pieces.set(s.seriesId, [s]);
  const parts = row.chunks.split(' ');
  for (let i = 0; i + 5 < parts.length; i += 6) {
    const seriesId = Number(parts[i]);
    const piece = chunkSlice(seriesId, parts.slice(i + 1, i + 6) as SliceFields, fromUs, toUs);
    if (piece.timestamps.length === 0) continue;
    const list = pieces.get(seriesId);
    if (list) list.push(piece);
    else pieces.set(seriesId, [piece]);
  }
  return [...pieces.keys()].sort((a, b) => a - b).map((id) => joinPieces(id, pieces.get(id)!));
}

/** A chunk entry of `nexus_series_read` after its series id: lo, first, step, jitter, values. */
type SliceFields = [lo: string, firstHex: string, step: string, jitter: string, valuesHex: string];

/**
 * The samples of one chunk slice within [fromUs, toUs] (microseconds since 2000), in time order.
 * Sample k is at first + (lo - 1 + k) * step + jitter[k] microseconds, nexus_chunk_samples' sum,
 * computed exactly (that one rounds through float8 beyond 2^53 us, which compaction's 6-hour
 * windows never reach): in doubles when every term keeps the sum an exact integer, else in BigInt.
 */
function chunkSlice(seriesId: number, fields: SliceFields, fromUs: bigint, toUs: bigint): SeriesSamples {
  const [loText, firstHex, stepText, jitterText, valuesHex] = fields;
  const values = float8ArrayOf(valuesHex);
  const jitter = jitterText.split(',');
  if (jitter.length !== values.length) {
    throw new Error(`series read: a chunk slice of ${jitter.length} times and ${values.length} values`);
  }
  const first = Buffer.from(firstHex, 'hex').readBigInt64BE(0);
  const lo = BigInt(loText);
  const step = BigInt(stepText);
  const skipped = (lo - 1n) * step;
  const spanned = BigInt(values.length) * step;
  const abs = (x: bigint): bigint => (x < 0n ? -x : x);
  // |first| <= 2^51, |skipped| <= 2^50, |k * step| <= 2^51, |jitter| <= 2^50: the sum stays
  // under 2^53, so each double operation below is exact.
  const fast = abs(first) <= 2n ** 51n && abs(skipped) <= 2n ** 50n && abs(spanned) <= 2n ** 51n;
  const base = Number(first + skipped);
  const stepUs = Number(step);
  const from = Number(fromUs);
  const to = Number(toUs);
  const out: SeriesSamples = { seriesId, timestamps: [], values: [] };
  for (let k = 0; k < values.length; k++) {
    const j = Number(jitter[k]);
    if (fast && Math.abs(j) <= 2 ** 50) {
      const t = base + k * stepUs + j;
      if (t < from || t > to) continue;
      out.timestamps.push(Math.abs(t) < 2 ** 52 ? (t + PG_EPOCH_US) / 1000 : exactMs(BigInt(t)));
    } else {
      const t = first + skipped + BigInt(k) * step + BigInt(jitter[k]!);
      if (t < fromUs || t > toUs) continue;
      out.timestamps.push(exactMs(t));
    }
    out.values.push(values[k]!);
  }
  return out;
}

/** The elements of a one-dimensional float8[] in PostgreSQL's binary array format (array_send), hex. */
function float8ArrayOf(hex: string): number[] {
  const bytes = Buffer.from(hex, 'hex');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const dims = view.getInt32(0);
  if (dims === 0) return [];
  if (dims !== 1 || view.getInt32(4) !== 0)
    throw new Error('series read: values are not a float8[] without nulls');
  const n = view.getInt32(12);
  if (bytes.length !== 20 + n * 12) throw new Error(`series read: ${bytes.length} bytes for ${n} values`);
  const values = new Array<number>(n);
  for (let k = 0, at = 20; k < n; k++, at += 12) values[k] = view.getFloat64(at + 4);
  return values;
}

/** One series from its pieces (rows, chunk slices), in time order. */
function joinPieces(seriesId: number, pieces: SeriesSamples[]): SeriesSamples {
  pieces.sort((a, b) => a.timestamps[0]! - b.timestamps[0]!);
  const timestamps = pieces.length === 1 ? pieces[0]!.timestamps : pieces.flatMap((p) => p.timestamps);
  const values = pieces.length === 1 ? pieces[0]!.values : pieces.flatMap((p) => p.values);
  for (let k = 1; k < timestamps.length; k++) {
    if (timestamps[k]! < timestamps[k - 1]!) {
      // Out of order (chunks are not written so, but read as the statement would): sort them.
      const order = timestamps.map((_, i) => i).sort((a, b) => timestamps[a]! - timestamps[b]!);
      return { seriesId, timestamps: order.map((i) => timestamps[i]!), values: order.map((i) => values[i]!) };
    }
  }
  return { seriesId, timestamps, values };
}

/** Milliseconds since 1970 of `pgUs` microseconds since 2000, through its exact decimal text. */
function exactMs(pgUs: bigint): number {
  const us = pgUs + BigInt(PG_EPOCH_US);
  const sign = us < 0n ? '-' : '';
  const abs = us < 0n ? -us : us;
  return Number(`${sign}${abs / 1000n}.${String(abs % 1000n).padStart(3, '0')}`);
}

/** A port series from its row. */
export function toStoredSeries(r: SeriesRow): StoredSeries {
  return {
    id: r.id,
    clusterId: r.cluster_id,
    hostname: r.hostname,
    gpuId: r.gpu_id,
    uuid: r.uuid,
    device: r.device,
    modelName: r.model_name,
    metric: r.metric,
    container: r.container,
    pod: r.pod,
    namespace: r.namespace,
    labels: r.labels,
  };
}

/** A port sample from a {@link NarrowSampleRow} and its series. */
export function toStoredSampleOf(series: SeriesRow, r: Omit<NarrowSampleRow, 'series_id'>): StoredSample {
  const sample: StoredSample = {
    clusterId: series.cluster_id,
    hostname: series.hostname,
    gpuId: series.gpu_id,
    uuid: series.uuid,
    device: series.device,
    modelName: series.model_name,
    metric: series.metric,
    container: series.container,
    pod: series.pod,
    namespace: series.namespace,
    labels: series.labels,
    timestampMs: r.ts_ms,
    value: r.value,
  };
  if (r.agg_count !== undefined && r.agg_count !== null) {
    sample.aggregate = {
      min: r.agg_min as number,
      max: r.agg_max as number,
      avg: r.value,
      count: r.agg_count,
      last: r.agg_last as number,
    };
  }
  return sample;
}

/** One row per GPU (cluster, host, index, uuid), with the device/model of its newest series. */
export function buildListGpus(clusterId?: string): Statement {
  const filter = clusterId === undefined ? '' : 'WHERE cluster_id = $1';
  return {
    text: `SELECT DISTINCT ON (cluster_id, hostname, gpu_id, uuid)
       cluster_id, hostname, gpu_id, uuid, device, model_name
FROM series ${filter}
ORDER BY cluster_id, hostname, gpu_id, uuid, id DESC`,
    params: clusterId === undefined ? [] : [clusterId],
  };
}

const numeric = /^\d+$/;

/** Order GPUs by cluster, host, then index numerically ("2" before "10"), then uuid. */
export function compareGpus(a: StoredGpu, b: StoredGpu): number {
  if (a.clusterId !== b.clusterId) return a.clusterId < b.clusterId ? -1 : 1;
  if (a.hostname !== b.hostname) return a.hostname < b.hostname ? -1 : 1;
  if (a.gpuId !== b.gpuId) {
    if (numeric.test(a.gpuId) && numeric.test(b.gpuId)) return Number(a.gpuId) - Number(b.gpuId);
    return a.gpuId < b.gpuId ? -1 : 1;
  }
  return a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0;
}

/** Map a {@link GpuRow} to a port GPU. */
export function toStoredGpu(r: GpuRow): StoredGpu {
  return {
    clusterId: r.cluster_id,
    hostname: r.hostname,
    gpuId: r.gpu_id,
    uuid: r.uuid,
    device: r.device,
    modelName: r.model_name,
  };
}

/** Dead letters newest first (by storage id, which follows insertion order). */
export function buildListDeadLetters(options: { limit?: number; source?: string } = {}): Statement {
  const params: unknown[] = [];
  let filter = '';
  if (options.source !== undefined) {
    params.push(options.source);
    filter = 'WHERE source = $1';
  }
  params.push(normaliseLimit(options.limit, DEFAULT_DEAD_LETTER_LIMIT));
  return {
    text: `SELECT id::float8 AS id, source, line::float8 AS line, raw, reason, detail,
       (extract(epoch FROM received_at) * 1000)::float8 AS received_ms
FROM dead_letters ${filter}
ORDER BY id DESC
LIMIT $${params.length}`,
    params,
  };
}

/** Map a {@link DeadLetterRow} to a port dead letter. */
export function toStoredDeadLetter(r: DeadLetterRow): StoredDeadLetter {
  return {
    id: r.id,
    source: r.source,
    line: r.line,
    raw: r.raw,
    reason: r.reason,
    detail: r.detail,
    receivedAtMs: r.received_ms,
  };
}

/** Total samples, as float8 so both drivers return a number. */
export const COUNT_SAMPLES_SQL = COUNT_RAW_SAMPLES_SQL;
