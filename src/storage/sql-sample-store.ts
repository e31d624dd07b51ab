/**
 * The SampleStore behaviour common to every SQL backend: migrations, the idempotent write path
 * (day partitions ensured first, in their own short transaction; then the batch transaction with
 * samples, rollups and dead letters; when the database refuses some of the data, that transaction
 * is rolled back and the batch written again with the refused rows isolated, see
 * `write-batch.ts`), queries at raw or rollup resolution, retention, the series id cache, close
 * semantics and error mapping. An adapter supplies a {@link SqlBackend} (how to run a statement,
 * a transaction, and what its errors mean).
 */
import type { Batch } from '../domain/types.js';
import { NexusError } from '../errors.js';
import type {
  CompactOptions,
  CompactResult,
  RetentionPolicy,
  RetentionResult,
  SampleQuery,
  SampleStore,
  SelectedSeries,
  SeriesSelect,
  SeriesSummary,
  SeriesSummarySelect,
  SeriesSummaryWindow,
  SpacingSelect,
  GpuSpacing,
  StoredDeadLetter,
  StoredGpu,
  StoredSample,
  WriteResult,
} from '../ports/sample-store.js';
import { applyMigrations } from './migrations.js';
import {
  DAY_MS,
  DAYS_AHEAD,
  MAX_NEW_DAYS_PER_BATCH,
  PARTITIONED_TABLES,
  PartitionCache,
  dayStart,
  distinctDays,
  ensurePartitions,
  expiredPartitions,
  listPartitions,
  retentionAnchor,
} from './partitions.js';
import {
  COUNT_SAMPLES_SQL,
  type DeadLetterRow,
  type GpuRow,
  type NarrowSampleRow,
  type SeriesRow,
  type Statement,
  buildSeriesByIds,
  toStoredSampleOf,
  asJsonRows,
  buildListDeadLetters,
  buildLatestSamples,
  buildListGpus,
  buildSampleQuery,
  buildSelectSeries,
  buildLatestSeriesSamples,
  buildGpuSeriesSamples,
  buildSeriesSamples,
  parseSeriesRead,
  pinsOneGpu,
  type SeriesReadRow,
  type SeriesSamples,
  type SeriesSampleRow,
  toStoredSeries,
  compareGpus,
  toStoredDeadLetter,
  toStoredGpu,
} from './queries.js';
import {
  CHUNK_WINDOW_MS,
  compactRawSamples,
  defaultPartitionWindows,
  newestChunkDayEnd,
  rawSamplesSql,
  trimChunks,
} from './chunks.js';
import { minuteSeriesSql, minuteTotalsSql, storeRawMinutes, trimMinuteChunks } from './minute-chunks.js';
import { DAILY_LEVEL, FLUSH_ROLLUPS_SQL, rollupLevel } from './rollups.js';
import { SeriesIdCache } from './series.js';
import {
  NUMERIC_VALUE_OUT_OF_RANGE,
  type SqlExecutor,
  type SqlResult,
  type TransactionExecutor,
  sqlState,
} from './sql-executor.js';
import {
  InvalidBatchError,
  type WriteBatchOptions,
  isUnstorableError,
  storableTimestamps,
  writeBatchInTransaction,
} from './write-batch.js';

/** A {@link Statement} as the arguments of `SqlExecutor.query`. */
function statement(s: Statement): [string, unknown[]] {
  return [s.text, s.params];
}

/**
 * Run `statement`; when a float8 sum in it leaves the type's range (SQLSTATE 22003: sums computed
 * from raw samples), run `saturating()` instead, whose sums saturate to +/-Infinity as the stored
 * rollups do.
 */
async function querySaturating<R extends object>(
  db: SqlExecutor,
  statement: Statement,
  saturating: () => Statement,
): Promise<SqlResult<R>> {
  try {
    return await db.query<R>(statement.text, statement.params);
  } catch (error) {
    if (sqlState(error) !== NUMERIC_VALUE_OUT_OF_RANGE) throw error;
    const again = saturating();
    return db.query<R>(again.text, again.params);
  }
}

/** Delete the `samples_1d` days that end at or before `cutoffMs` (retention of the daily rollup). */
async function trimDaily(db: SqlExecutor, cutoffMs: number): Promise<void> {
  await db.query('SELECT nexus_trim_daily($1::timestamptz)', [new Date(cutoffMs).toISOString()]);
}

/**
 * The statement of {@link SqlSampleStore.summarizeSeries}: per series, count, sum, min and max of
 * the `resolution` buckets starting in each window [startMs, endMs) (`raw`: of the samples
 * there); for `1h`, whole UTC days read from `samples_1d` and the hours around them from
 * `samples_1h`.
 * `saturate` adds the totals with `nexus_saturating_sum` (a retry after a float8 overflow).
 */
export function summarizeStatement(select: SeriesSummarySelect, saturate = false): Statement {
  const { text: selectSql, params } = buildSelectSeries(select.filter);
  // The filter without its ORDER BY: ordered, the planner probes the rollup per series.
  const seriesSql = selectSql.replace(/\nORDER BY id$/, '');
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}::float8`;
  };
  // Raw and 1m windows are short (the partial minutes and hours at the ends of a range): read
  // through the primary key, one descent per series (`= ANY(ARRAY(..))`), never a whole day
  // partition. The 1h and 1d windows read most of their rows anyway: a scan joined to the series.
  // Chunk tables are read by window (their start_ts index) and joined to the series by hash: one
  // index descent per series (the filter may match 56k series over 30 days) cost more than the rows.
  const hashed = (column: string): string => `${column} IN (SELECT id FROM (${seriesSql}) AS s)`;
  const part = (table: string, from: number, to: number): string => {
    const series = (column: string): string =>
      table === 'samples' || table === 'samples_1m'
        ? `${column} = ANY(ARRAY(SELECT id FROM (${seriesSql}) AS s))`
        : hashed(column);
    if (table === 'samples') {
      // Only series with a 1-minute bucket over the piece can have a sample in it (summarizeSeries
      // folds the rollup queue before it reads): the partial minutes of a long range read a few thousand active
      // series, not every series the filter matches over the whole range.
      const minute = Math.floor(from / 60_000) * 60_000;
      const active = (column: string): string =>
        `${column} = ANY(ARRAY(SELECT DISTINCT m.series_id FROM ${minuteSeriesSql(
          series,
          {
            from: `to_timestamp(${p(minute)} / 1000)`,
            to: `to_timestamp(${p(to)} / 1000)`,
            toExclusive: true,
          },
          hashed,
        )} AS m))`;
      const raw = rawSamplesSql(active, {
        from: `to_timestamp(${p(from)} / 1000)`,
        to: `to_timestamp(${p(to)} / 1000)`,
        toExclusive: true,
      });
      return `SELECT series_id, 1::bigint AS count, value AS sum, value AS min, value AS max FROM ${raw} AS x`;
    }
    if (table === 'samples_1m') {
      const minute = (ms: number): number => Math.ceil(ms / 60_000) * 60_000;
      const totals = minuteTotalsSql(
        series,
        {
          from: `to_timestamp(${p(from)} / 1000)`,
          to: `to_timestamp(${p(to)} / 1000)`,
          minuteFrom: `to_timestamp(${p(minute(from))} / 1000)`,
          minuteTo: `to_timestamp(${p(minute(to))} / 1000)`,
        },
        hashed,
      );
      return `SELECT series_id, count, sum, min, max FROM ${totals} AS m`;
    }
    return `SELECT series_id, count, sum, min, max FROM ${table}
  WHERE ${series('series_id')} AND bucket >= to_timestamp(${p(from)} / 1000) AND bucket < to_timestamp(${p(to)} / 1000)`;
  };
  const day = DAILY_LEVEL.bucketMs;
  const partsOf = ({ startMs, endMs, resolution }: SeriesSummaryWindow): string[] => {
    const d1 = Math.ceil(startMs / day) * day;
    const d2 = Math.floor(endMs / day) * day;
    if (resolution === '1h' && d1 < d2)
      return [
        ...(startMs < d1 ? [part('samples_1h', startMs, d1)] : []),
        part(DAILY_LEVEL.table, d1, d2),
        ...(d2 < endMs ? [part('samples_1h', d2, endMs)] : []),
      ];
    return [part(resolution === 'raw' ? 'samples' : rollupLevel(resolution).table, startMs, endMs)];
  };
  const parts = [select, ...(select.more ?? [])].flatMap(partsOf);
  // One JSON text instead of a row per series: the drivers (PGlite's above all) spend far longer
  // decoding many small rows than the database spends aggregating them.
  return {
    text: `SELECT coalesce(json_agg(json_build_array(series_id, count, sum, min, max) ORDER BY series_id), '[]')::text AS rows
FROM (
SELECT series_id, sum(count)::float8 AS count, ${saturate ? 'nexus_saturating_sum' : 'sum'}(sum) AS sum, min(min) AS min, max(max) AS max
FROM (${parts.join('\nUNION ALL\n')}) AS r
GROUP BY series_id
) AS t`,
    params,
  };
}

/**
 * The statement of {@link SqlSampleStore.sampleSpacing}: the distinct sample times per GPU and
 * instance, the gaps between consecutive ones (ms), their count and median (percentile_cont 0.5:
 * the mean of the middle two for an even count), as one JSON text.
 */
export function spacingStatement(select: SpacingSelect): Statement {
  const { text: selectSql, params } = buildSelectSeries(select.filter);
  const seriesSql = selectSql.replace(/\nORDER BY id$/, '');
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const label = p(select.instanceLabel);
  const from = p(select.startMs);
  const to = p(select.endMs);
  const ex = select.exclude ?? [];
  const excluded =
    ex.length === 0
      ? ''
      : `WHERE (f.cluster_id, f.hostname, f.gpu_id, coalesce(f.labels ->> ${label}::text, '')) NOT IN (
    SELECT * FROM unnest(${p(ex.map((g) => g.clusterId))}::text[], ${p(ex.map((g) => g.hostname))}::text[],
                         ${p(ex.map((g) => g.gpuId))}::text[], ${p(ex.map((g) => g.instance))}::text[]))`;
  return {
    text: `WITH t AS (
  SELECT DISTINCT s.cluster_id, s.hostname, s.gpu_id, coalesce(s.labels ->> ${label}::text, '') AS inst, x.ts
  FROM ${rawSamplesSql((column) => `${column} IN (SELECT f.id FROM (${seriesSql}) AS f ${excluded})`, {
    from: `to_timestamp(${from}::float8 / 1000)`,
    to: `to_timestamp(${to}::float8 / 1000)`,
    toExclusive: true,
  })} AS x
  JOIN (SELECT * FROM (${seriesSql}) AS f ${excluded}) AS s ON s.id = x.series_id
), d AS (
  SELECT cluster_id, hostname, gpu_id, inst,
    (extract(epoch FROM ts - lag(ts) OVER (PARTITION BY cluster_id, hostname, gpu_id, inst ORDER BY ts)) * 1000)::float8 AS gap
  FROM t
)
SELECT coalesce(json_agg(json_build_array(cluster_id, hostname, gpu_id, inst, n, med)), '[]')::text AS rows
FROM (
  SELECT cluster_id, hostname, gpu_id, inst, count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS med
  FROM d GROUP BY cluster_id, hostname, gpu_id, inst
) AS g`,
    params,
  };
}

/** Most series rows kept for joining query results in memory. */
const SERIES_CACHE_LIMIT = 100_000;

/** How the sample tables are partitioned: native day partitions, or TimescaleDB hypertables. */
export type PartitioningMode = 'native' | 'timescaledb';

/** What an adapter provides to {@link SqlSampleStore}. */
export interface SqlBackend {
  /** Human name used in error messages ("PGlite", "PostgreSQL"). */
  readonly name: string;
  /** Single statements outside a transaction. */
  readonly executor: SqlExecutor;
  /** Run `fn` in one transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T>;
  /** Map an error that is not already a NexusError (connection loss -> BACKEND_UNAVAILABLE, ...). */
  mapError(error: unknown, operation: string): NexusError;
  /** Release the backend; called once, after in-flight operations settled. */
  close(): Promise<void>;
  /**
   * VACUUM `rollup_pending` and `rollup_marks` after a flush emptied them (PGlite: no autovacuum runs in its
   * single-user backend, and a table of deleted rows would only grow). PostgreSQL's autovacuum
   * does it there.
   */
  readonly vacuumAfterFlush?: boolean;
}

/** Default queued samples after which a write starts a rollup flush in the background. */
const FLUSH_AFTER_SAMPLES = 50_000;
/** Default longest wait of a queued sample for a background flush (checked after each write). */
const FLUSH_AFTER_MS = 5_000;

/** Options of {@link SqlSampleStore}. */
export interface SqlSampleStoreOptions {
  /** Most series ids kept in memory (default 200,000). */
  seriesCacheSize?: number;
  /**
   * Keep the 1m/1h rollups current on write (default true). Turn off only to measure what the
   * rollups cost: rollup-resolution queries then miss what this store writes (and 1-minute reads
   * of compacted windows, computed from their raw chunks, can miss late samples it writes).
   */
  rollups?: boolean;
  /**
   * When a write starts a background flush of the rollup queue (rollups.ts): once this store
   * queued `samples` (default 50,000), or `ms` after its last flush (default 5,000).
   */
  rollupFlush?: { samples?: number; ms?: number };
  /**
   * Called when a background flush fails (the queue is durable: the next flush, at the latest the
   * next rollup read, takes it up again). Default: a process warning.
   */
  onFlushError?: (error: unknown) => void;
}

/** A SampleStore over any {@link SqlBackend}. */
export class SqlSampleStore implements SampleStore {
  readonly #backend: SqlBackend;
  readonly #cache: SeriesIdCache;
  /** Series rows by id for query results (rows are immutable; cleared past SERIES_CACHE_LIMIT). */
  readonly #seriesById = new Map<number, SeriesRow>();
  readonly #partitions = new PartitionCache();
  readonly #rollups: boolean;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Samples this store queued for the rollups since its last flush, and when that was. */
  #queued = 0;
  #flushedAt = Date.now();
  #flushing: Promise<void> | undefined;
  readonly #flushAfterSamples: number;
  readonly #flushAfterMs: number;
  readonly #onFlushError: (error: unknown) => void;
  #mode: PartitioningMode | undefined;
  #closing: Promise<void> | undefined;

  constructor(backend: SqlBackend, options: SqlSampleStoreOptions = {}) {
    this.#backend = backend;
    this.#cache = new SeriesIdCache(options.seriesCacheSize);
    this.#rollups = options.rollups !== false;
    this.#flushAfterSamples = options.rollupFlush?.samples ?? FLUSH_AFTER_SAMPLES;
    this.#flushAfterMs = options.rollupFlush?.ms ?? FLUSH_AFTER_MS;
    this.#onFlushError =
      options.onFlushError ??
      ((error) =>
        process.emitWarning(`rollup flush failed (retried on the next one): ${(error as Error).message}`));
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  migrate(): Promise<void> {
    return this.#run('migrate', async () => {
      await this.#backend.transaction((tx) => applyMigrations(tx));
      this.#mode = undefined;
      await this.#partitioning();
    });
  }

  /** How the tables are partitioned (read once from `storage_settings`, after migrate()). */
  partitioning(): Promise<PartitioningMode> {
    return this.#run('partitioning', () => this.#partitioning());
  }

  /**
   * Write one batch in one transaction. When the database refuses some of its data (a
   * non-retryable data, constraint or limit error), the transaction is rolled back and the batch
   * written again in a second one that isolates the refused samples as `unstorable_row` dead
   * letters and stores the rest. Any other error (e.g. connection loss) fails the write.
   */
  writeBatch(batch: Batch): Promise<WriteResult> {
    return this.#run('writeBatch', async () => {
      await this.#ensureDays(storableTimestamps(batch));
      const write = (options: WriteBatchOptions) =>
        this.#backend.transaction((tx) =>
          writeBatchInTransaction(tx, batch, this.#cache, { rollups: this.#rollups, ...options }),
        );
      let outcome;
      try {
        outcome = await write({});
      } catch (error) {
        if (!isUnstorableError(error)) throw error;
        outcome = await write({ isolate: true });
      }
      this.#cache.addAll(outcome.resolvedSeries);
      if (this.#rollups) this.#queued += outcome.result.inserted;
      const due = Date.now() - this.#flushedAt >= this.#flushAfterMs;
      if (this.#queued >= this.#flushAfterSamples || (this.#queued > 0 && due)) {
        this.#flushInBackground();
      }
      return outcome.result;
    });
  }

  /**
   * Fold the samples every writer queued into the rollup tables (rollups.ts). Reads of the
   * rollups, compaction and retention call it first; writes start it in the background.
   */
  flushRollups(): Promise<number> {
    return this.#run('flushRollups', () => this.#flushRollups());
  }

  async #flushRollups(): Promise<number> {
    if (!this.#rollups) return 0;
    const queued = this.#queued;
    const { rows } = await this.#backend.executor.query<{ n: number }>(FLUSH_ROLLUPS_SQL);
    this.#queued = Math.max(0, this.#queued - queued);
    this.#flushedAt = Date.now();
    const n = rows[0]?.n ?? 0;
    if (n > 0 && this.#backend.vacuumAfterFlush === true) {
      await this.#backend.executor.query('VACUUM rollup_pending, rollup_marks');
    }
    return n;
  }

  /**
   * One background flush at a time. A failure goes to `onFlushError` and nowhere else: the queue
   * is durable, and the next flush (at the latest before the next rollup read, which reports its
   * own error) takes it up again.
   */
  #flushInBackground(): void {
    if (this.#flushing !== undefined || this.#closing !== undefined) return;
    this.#flushing = this.flushRollups()
      .then(
        () => undefined,
        (error: unknown) => {
          // The next attempt waits like a due flush, instead of following every write.
          this.#flushedAt = Date.now();
          if (this.#closing !== undefined) return;
          try {
            this.#onFlushError(error);
          } catch {
            // a reporter that throws must not leave a rejection nobody handles
          }
        },
      )
      .finally(() => {
        this.#flushing = undefined;
      });
  }

  querySamples(query: SampleQuery): Promise<StoredSample[]> {
    return this.#run('querySamples', async () => {
      const nowMs = Date.now();
      const statement = buildSampleQuery(query, nowMs);
      if (statement.resolution !== 'raw') await this.#flushRollups();
      if (statement.resolution === 'raw') {
        const { text, params } = asJsonRows(statement, query.order);
        const { rows } = await this.#backend.executor.query<{ rows: string }>(text, params);
        const raw = JSON.parse(rows[0]?.rows ?? '[]') as [number, number, number][];
        const series = await this.#seriesRows(raw.map((r) => r[0]));
        return raw.map(([id, ts_ms, value]) => toStoredSampleOf(series.get(id)!, { ts_ms, value }));
      }
      const rows = await querySaturating<NarrowSampleRow>(this.#backend.executor, statement, () =>
        buildSampleQuery(query, nowMs, true),
      );
      const series = await this.#seriesRows(rows.rows.map((r) => r.series_id));
      return rows.rows.map((r) => toStoredSampleOf(series.get(r.series_id)!, r));
    });
  }

  /** Series rows by id, from the cache or one query for the missing ones (series never change). */
  async #seriesRows(ids: number[]): Promise<Map<number, SeriesRow>> {
    // The answer is a map of its own, taken from the cache before any await: a concurrent call may
    // clear the cache while this one waits for its missing rows.
    const found = new Map<number, SeriesRow>();
    const missing: number[] = [];
    for (const id of new Set(ids)) {
      const row = this.#seriesById.get(id);
      if (row) found.set(id, row);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const { text, params } = buildSeriesByIds(missing);
      // As one JSON text: a driver decodes that far faster than thousands of rows (analytics
      // summaries name tens of thousands of series at once).
      const { rows } = await this.#backend.executor.query<{ rows: string }>(
        `SELECT coalesce(json_agg(s), '[]')::text AS rows FROM (${text}) AS s`,
        params,
      );
      if (this.#seriesById.size + missing.length > SERIES_CACHE_LIMIT) this.#seriesById.clear();
      for (const row of JSON.parse(rows[0]?.rows ?? '[]') as SeriesRow[]) {
        this.#seriesById.set(row.id, row);
        found.set(row.id, row);
      }
    }
    return found;
  }

  listGpus(clusterId?: string): Promise<StoredGpu[]> {
    return this.#run('listGpus', async () => {
      const { text, params } = buildListGpus(clusterId);
      const { rows } = await this.#backend.executor.query<GpuRow>(text, params);
      return rows.map(toStoredGpu).sort(compareGpus);
    });
  }

  latestSamples(clusterId?: string): Promise<StoredSample[]> {
    return this.#run('latestSamples', async () => {
      const { text, params } = buildLatestSamples(clusterId);
      const { rows } = await this.#backend.executor.query<NarrowSampleRow>(text, params);
      const series = await this.#seriesRows(rows.map((r) => r.series_id));
      return rows.map((r) => toStoredSampleOf(series.get(r.series_id)!, r));
    });
  }

  selectSeries(select: SeriesSelect, signal?: AbortSignal): Promise<SelectedSeries[]> {
    return this.#run('selectSeries', async () => {
      signal?.throwIfAborted();
      const db = this.#backend.executor;
      const limit = select.maxSamples === undefined ? undefined : select.maxSamples + 1;
      // TimescaleDB excludes its chunks best with the values at plan time: no kept plan there.
      const planned = (await this.#partitioning()) === 'native';
      if (planned && select.accept === undefined && select.latestOnly !== true && pinsOneGpu(select.filter)) {
        // One GPU's series: their ids are looked up in the same statement (one round trip).
        const { rows } = await db.query<SeriesReadRow>(
          ...statement(buildGpuSeriesSamples(select.filter, select.startMs, select.endMs, limit)),
        );
        const read = this.#overBudget(rows[0], select);
        const byId = await this.#seriesRows(read.map((f) => f.seriesId));
        return read.map((f) => ({
          series: toStoredSeries(byId.get(f.seriesId)!),
          timestamps: f.timestamps,
          values: f.values,
        }));
      }
      // Ids only, their rows from the cache: a driver decodes ten full series rows (labels as
      // jsonb) in about as long as the GPU-hour of samples that follows.
      const { text, params } = buildSelectSeries(select.filter);
      const found = await db.query<{ ids: string | null }>(
        `SELECT string_agg(id::text, ' ' ORDER BY id) AS ids FROM (${text}) AS s`,
        params,
      );
      const foundIds = found.rows[0]?.ids?.split(' ').map(Number) ?? [];
      const byId = await this.#seriesRows(foundIds);
      const chosen = new Map<number, SelectedSeries>();
      for (const id of foundIds) {
        const series = toStoredSeries(byId.get(id)!);
        if (select.accept === undefined || select.accept(series)) {
          chosen.set(series.id, { series, timestamps: [], values: [] });
        }
      }
      if (chosen.size === 0) return [];
      signal?.throwIfAborted();
      const ids = [...chosen.keys()];
      if (select.latestOnly) {
        const { rows } = await db.query<SeriesSampleRow>(
          ...statement(buildLatestSeriesSamples(ids, select.startMs, select.endMs)),
        );
        for (const r of rows) {
          const entry = chosen.get(r.series_id)!;
          entry.timestamps.push(r.ts_ms);
          entry.values.push(r.value);
        }
        return [...chosen.values()].filter((e) => e.timestamps.length > 0);
      }
      const { rows } = await db.query<SeriesReadRow>(
        ...statement(buildSeriesSamples(ids, select.startMs, select.endMs, limit, planned)),
      );
      const read = this.#overBudget(rows[0], select);
      for (const f of read) {
        const entry = chosen.get(f.seriesId)!;
        entry.timestamps = f.timestamps;
        entry.values = f.values;
      }
      return [...chosen.values()].filter((e) => e.timestamps.length > 0);
    });
  }

  /**
   * The series of a {@link buildSeriesSamples} answer (window bounds: `select`'s); READ_BUDGET_EXCEEDED
   * when it says the window holds more than `maxSamples`.
   */
  #overBudget(row: SeriesReadRow | undefined, select: SeriesSelect): SeriesSamples[] {
    if (row?.over === true) {
      throw new NexusError(
        'READ_BUDGET_EXCEEDED',
        `the selection holds more than ${select.maxSamples} samples in the window; narrow the selectors or the time range`,
        { details: { maxSamples: select.maxSamples } },
      );
    }
    return parseSeriesRead(row);
  }

  /**
   * One aggregate statement over every window ({@link summarizeStatement}): the whole UTC days of
   * a `1h` window come from `samples_1d` (a day's row holds exactly the samples of its 24 hourly
   * buckets), the hours around them from `samples_1h`; series rows come from the cache.
   */
  summarizeSeries(select: SeriesSummarySelect, signal?: AbortSignal): Promise<SeriesSummary[]> {
    return this.#run('summarizeSeries', async () => {
      signal?.throwIfAborted();
      await this.#flushRollups();
      const { rows } = await querySaturating<{ rows: string }>(
        this.#backend.executor,
        summarizeStatement(select),
        () => summarizeStatement(select, true),
      );
      // [series id, count, sum, min, max] per series; a saturated sum arrives as "Infinity".
      const totals = JSON.parse(rows[0]?.rows ?? '[]') as [number, number, number | string, number, number][];
      if (totals.length === 0) return [];
      signal?.throwIfAborted();
      const series = await this.#seriesRows(totals.map((r) => r[0]));
      return totals.map(([id, count, sum, min, max]) => ({
        series: toStoredSeries(series.get(id)!),
        count,
        sum: Number(sum),
        min,
        max,
      }));
    });
  }

  sampleSpacing(select: SpacingSelect, signal?: AbortSignal): Promise<GpuSpacing[]> {
    return this.#run('sampleSpacing', async () => {
      signal?.throwIfAborted();
      const { text, params } = spacingStatement(select);
      const { rows } = await this.#backend.executor.query<{ rows: string }>(text, params);
      const gpus = JSON.parse(rows[0]?.rows ?? '[]') as [
        string,
        string,
        string,
        string,
        number,
        number | null,
      ][];
      return gpus.map(([clusterId, hostname, gpuId, instance, timestamps, medianMs]) => ({
        clusterId,
        hostname,
        gpuId,
        instance,
        timestamps,
        medianMs,
      }));
    });
  }

  listDeadLetters(options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]> {
    return this.#run('listDeadLetters', async () => {
      const { text, params } = buildListDeadLetters(options);
      const { rows } = await this.#backend.executor.query<DeadLetterRow>(text, params);
      return rows.map(toStoredDeadLetter);
    });
  }

  countSamples(): Promise<number> {
    return this.#run('countSamples', async () => {
      const { rows } = await this.#backend.executor.query<{ n: number }>(COUNT_SAMPLES_SQL);
      return rows[0]?.n ?? 0;
    });
  }

  applyRetention(policy: RetentionPolicy): Promise<RetentionResult> {
    return this.#run('applyRetention', async () => {
      await this.#flushRollups();
      const nowMs = policy.nowMs ?? Date.now();
      const ahead = Array.from({ length: DAYS_AHEAD + 1 }, (_, i) => dayStart(nowMs) + i * DAY_MS);
      const db = this.#backend.executor;
      if ((await this.#partitioning()) === 'timescaledb') return this.#timescaleRetention(policy, nowMs);

      await ensurePartitions(db, ahead);
      this.#partitions.add(ahead);
      const partitions = await listPartitions(db);
      const raw = partitions.filter((p) => p.parent === 'samples');
      // Compaction drops the raw partitions it emptied: the newest chunk counts as data too.
      const chunkDayEnd = await newestChunkDayEnd(db);
      const rowAnchor = await retentionAnchor(db, PARTITIONED_TABLES[0], raw, nowMs);
      let anchor = rowAnchor;
      if (chunkDayEnd !== undefined) {
        // rowAnchor is `nowMs` both for rows up to today and for no rows at all: tell them apart.
        const rowsFound =
          rowAnchor < nowMs ||
          (await db.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM samples) AS found')).rows[0]
            ?.found;
        anchor =
          rowsFound && rowAnchor >= nowMs
            ? nowMs
            : Math.min(nowMs, Math.max(rowsFound ? rowAnchor : 0, chunkDayEnd));
      }
      const rawCutoff = policy.rawMs > 0 ? anchor - policy.rawMs : undefined;
      const rollupCutoff = policy.rollupMs > 0 ? anchor - policy.rollupMs : undefined;
      const expired = [
        ...(rawCutoff === undefined ? [] : expiredPartitions(raw, rawCutoff)),
        ...(rollupCutoff === undefined
          ? []
          : expiredPartitions(
              partitions.filter((p) => p.parent !== 'samples'),
              rollupCutoff,
            )),
      ];
      if (rawCutoff !== undefined) {
        // Raw rows about to go: the minutes readers computed from them are stored first.
        const windows = expired
          .filter((p) => p.parent === 'samples')
          .flatMap((p) =>
            Array.from({ length: DAY_MS / CHUNK_WINDOW_MS }, (_, i) => p.dayMs + i * CHUNK_WINDOW_MS),
          );
        await storeRawMinutes(db, [...windows, ...(await defaultPartitionWindows(db, rawCutoff))]);
      }
      const dropped: string[] = [];
      // One short transaction per partition: a drop locks its parent.
      for (const p of expired) {
        const { rows } = await db.query<{ dropped: boolean }>(
          'SELECT nexus_drop_partition($1, $2) AS dropped',
          [p.parent, p.name],
        );
        if (rows[0]?.dropped) dropped.push(p.name);
      }
      if (expired.length > 0) this.#partitions.forget();
      const toTs = (ms: number | undefined): string | null =>
        ms === undefined ? null : new Date(ms).toISOString();
      const { rows } = await db.query<{ n: number }>(
        'SELECT nexus_trim_defaults($1::timestamptz, $2::timestamptz)::float8 AS n',
        [toTs(rawCutoff), toTs(rollupCutoff)],
      );
      if (rollupCutoff !== undefined) await trimDaily(db, rollupCutoff);
      if (rawCutoff !== undefined) await trimChunks(db, rawCutoff);
      if (rollupCutoff !== undefined) await trimMinuteChunks(db, rollupCutoff);
      return { dropped, deletedRows: rows[0]?.n ?? 0 };
    });
  }

  compact(options: CompactOptions): Promise<CompactResult> {
    return this.#run('compact', async () => {
      // TimescaleDB compresses its own chunks; the native layout is the one compacted here.
      if ((await this.#partitioning()) !== 'native') return { windows: 0, samples: 0, droppedPartitions: [] };
      return compactRawSamples(this.#backend.executor, this.#partitions, options);
    });
  }

  ping(): Promise<void> {
    return this.#run('ping', async () => {
      await this.#backend.executor.query('SELECT 1');
    });
  }

  /**
   * Run `fn` on this store's database, for modules that keep their own tables in it (the API
   * token store, src/auth/token-store.ts); errors are mapped like the store's own.
   */
  withSql<T>(operation: string, fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#run(operation, () => fn(this.#backend.executor));
  }

  /** Stop accepting calls, wait for the ones in flight, release the backend. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      this.#cache.clear();
      await this.#backend.close();
    })();
    return this.#closing;
  }

  async #partitioning(): Promise<PartitioningMode> {
    if (this.#mode !== undefined) return this.#mode;
    const { rows } = await this.#backend.executor.query<{ value: string }>(
      "SELECT value FROM storage_settings WHERE key = 'partitioning'",
    );
    this.#mode = rows[0]?.value === 'timescaledb' ? 'timescaledb' : 'native';
    return this.#mode;
  }

  /** Create the missing day partitions of these sample times, before the batch transaction. */
  async #ensureDays(timestampsMs: number[]): Promise<void> {
    if (timestampsMs.length === 0 || (await this.#partitioning()) !== 'native') return;
    const missing = this.#partitions.missing(distinctDays(timestampsMs));
    if (missing.length === 0) return;
    // Newest first: a batch spanning absurdly many days keeps the recent ones in day partitions
    // and leaves the rest to the default partition (still stored, moved on a later ensure).
    const days = missing.slice(0, MAX_NEW_DAYS_PER_BATCH);
    await ensurePartitions(this.#backend.executor, days);
    this.#partitions.add(days);
  }

  /** TimescaleDB path (not exercised by the tests here): drop whole chunks older than the bounds. */
  async #timescaleRetention(policy: RetentionPolicy, nowMs: number): Promise<RetentionResult> {
    const db = this.#backend.executor;
    const { rows } = await db.query<{ newest: number | null }>(
      'SELECT (extract(epoch FROM max(ts)) * 1000)::float8 AS newest FROM samples',
    );
    const newest = rows[0]?.newest;
    const anchor =
      newest === null || newest === undefined ? nowMs : Math.min(nowMs, dayStart(newest) + DAY_MS);
    const dropped: string[] = [];
    for (const { parent, kind } of PARTITIONED_TABLES) {
      const bound = kind === 'raw' ? policy.rawMs : policy.rollupMs;
      if (!(bound > 0)) continue;
      const r = await db.query<{ chunk: string }>(
        'SELECT drop_chunks($1::regclass, older_than => $2::timestamptz)::text AS chunk',
        [parent, new Date(anchor - bound).toISOString()],
      );
      dropped.push(...r.rows.map((c) => c.chunk));
    }
    if (policy.rollupMs > 0) await trimDaily(db, anchor - policy.rollupMs);
    return { dropped, deletedRows: 0 };
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new NexusError('STORE_CLOSED', `${this.#backend.name} sample store is closed`));
    }
    const p = fn().catch((error: unknown) => {
      throw this.#mapError(error, operation);
    });
    this.#inFlight.add(p);
    const forget = (): void => {
      this.#inFlight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  #mapError(error: unknown, operation: string): NexusError {
    if (error instanceof NexusError) return error;
    if (error instanceof InvalidBatchError) {
      return new NexusError('BAD_REQUEST', error.message, { cause: error, details: { operation } });
    }
    // Data exceptions (22) and integrity violations (23, e.g. the finite-value check) mean the
    // input is refused: retrying the same batch cannot help.
    const state = sqlState(error);
    if (state !== undefined && (state.startsWith('22') || state.startsWith('23'))) {
      const message = error instanceof Error ? error.message : String(error);
      return new NexusError(
        'BAD_REQUEST',
        `${this.#backend.name} refused the data of ${operation}: ${message}`,
        {
          cause: error,
          details: { operation, sqlState: state },
        },
      );
    }
    return this.#backend.mapError(error, operation);
  }
}
