/**
 * The idempotent write path of the sample store, shared by the PGlite and PostgreSQL adapters.
 * Runs inside the caller's transaction:
 *
 * 1. Insert the ledger row; if the batch id is already there, stop (duplicate, nothing written).
 * 2. Refuse, without SQL, the samples no database can hold (time outside years 0001-9999,
 *    non-finite value): they become `unstorable_row` dead letters (see `refusals.ts`).
 * 3. Resolve series ids: from the caller's cache, else insert the missing series
 *    (ON CONFLICT DO NOTHING, in key order so concurrent writers lock in one order) and select them.
 *    The series key is a hash of the canonical identity (labels sorted), so label order does not
 *    make a new series.
 * 4. Chunk windows (`chunks.ts`): share-lock the 6-hour windows of the samples; where a compaction
 *    pass already turned a window into chunks, the chunks of these series there become rows again,
 *    so the natural key below sees every stored sample.
 *    Samples, fast path: binary COPY straight into `samples` under a savepoint. The ledger already
 *    filters replays of the same batch, so a natural-key conflict is rare; when one happens
 *    (23505) roll back to the savepoint and insert the same rows with ON CONFLICT DO NOTHING
 *    RETURNING. Only on that slow path, the rows the insert refused are compared with the stored
 *    values: a different value is a `conflicting_duplicate` dead letter, an identical one a silent
 *    replay. COPY is about twice as fast as unnest or staging + ON CONFLICT (docs/performance.md,
 *    "Why the write path is shaped so").
 * 5. Rollups: the samples actually inserted (all of them after a clean COPY; the rows the
 *    conflict path's INSERT returned otherwise) are queued in `rollup_pending`, in the same
 *    transaction, for the store to fold into the rollup tables in bulk (see `rollups.ts`).
 * 6. Dead letters: the batch's own, then one per refused sample (and the ledger's count updated).
 *
 * Steps 3-5 run once for the whole batch with no savepoint of their own (a clean batch costs what
 * it always did). When the database refuses the data ({@link isUnstorableError}), the store rolls
 * that transaction back and calls this again with `isolate`: the samples are then written in
 * parts, each under a savepoint, and a refused part is split in two until the refused single
 * samples are found. A batch with one poison row among n costs about 2 log2(n) parts (26 for
 * 5,000 rows), not n; every other row is stored exactly once, in the same transaction as the
 * ledger row, so a redelivered batch still adds nothing. When a single sample fails while its
 * series was being inserted, the other samples of that series are refused without more attempts.
 *
 * The day partitions the batch needs are created before this transaction, by the store (see
 * `partitions.ts`). New series ids are returned rather than cached here: the transaction may
 * still roll back.
 */
import type { Batch, Sample, SeriesKey } from '../domain/types.js';
import type { WriteResult } from '../ports/sample-store.js';
import { encodeSamplesCopy } from './binary-copy.js';
import { lockChunkWindows, prepareChunkWindows } from './chunks.js';
import {
  type RefusedSample,
  describeStoreError,
  isUnstorableError,
  refusalDeadLetters,
  unstorableSampleProblem,
} from './refusals.js';
import { queueRollups } from './rollups.js';
import {
  type SeriesIdLookup,
  SeriesIdCache,
  pgLabelsJson,
  pgText,
  sameSeries,
  seriesIdentity,
  seriesKeyHash,
} from './series.js';
import { type TransactionExecutor, UNIQUE_VIOLATION, numericArrayLiteral, sqlState } from './sql-executor.js';
import { deadLetterKeySql } from './migrations.js';

export { InvalidBatchError, isUnstorableError } from './refusals.js';

/** Rows per COPY stream / INSERT statement; one giant COPY is pathological on PGlite. */
export const WRITE_CHUNK_ROWS = 50_000;

const SAMPLE_COLUMNS = ['series_id', 'ts', 'value'] as const;

/** A series id found or created by a write. */
export interface ResolvedSeries {
  key: SeriesKey;
  id: number;
}

/** Outcome of {@link writeBatchInTransaction}. */
export interface BatchWriteOutcome {
  result: WriteResult;
  /** Series created or first looked up by this write. Cache them once the transaction committed. */
  resolvedSeries: ResolvedSeries[];
  /** Parts written under a savepoint (0 without `isolate`); tests check the split stays O(log n). */
  parts: number;
}

/** Options of {@link writeBatchInTransaction}. */
export interface WriteBatchOptions {
  /**
   * Queue the samples for the rollups (default true). Off only to measure what rollups cost:
   * without them, rollup-resolution queries miss this batch.
   */
  rollups?: boolean;
  /**
   * Write the samples in parts under savepoints, splitting every part the database refuses until
   * the refused samples are isolated (default false: one part, any error fails the write).
   */
  isolate?: boolean;
}

/** The sample times of a batch the database can be asked to store (for the day partitions). */
export function storableTimestamps(batch: Batch): number[] {
  const out: number[] = [];
  for (const s of batch.samples) if (unstorableSampleProblem(s) === undefined) out.push(s.timestampMs);
  return out;
}

/**
 * Write one batch inside an open transaction. `cache` is only read; add
 * {@link BatchWriteOutcome.resolvedSeries} to it once the transaction commits.
 * @throws the database's error when a part fails for a reason splitting cannot fix, or (without
 *   `isolate`) when the database refuses any of the data
 */
export async function writeBatchInTransaction(
  tx: TransactionExecutor,
  batch: Batch,
  cache: SeriesIdLookup,
  options: WriteBatchOptions = {},
): Promise<BatchWriteOutcome> {
  const n = batch.samples.length;
  const ledger = await tx.query(
    `INSERT INTO batch_ledger (batch_id, source, sample_count, dead_letter_count)
VALUES ($1, $2, $3, $4) ON CONFLICT (batch_id) DO NOTHING`,
    [batch.id, pgText(batch.source), n, batch.deadLetters.length],
  );
  if (ledger.rowCount === 0) {
    return {
      result: { duplicate: true, inserted: 0, deadLetters: 0, unstorable: 0, conflicts: 0 },
      resolvedSeries: [],
      parts: 0,
    };
  }

  const writer = new SampleWriter(tx, batch, cache, options.rollups !== false);
  const candidates: number[] = [];
  for (let i = 0; i < n; i++) {
    const problem = unstorableSampleProblem(batch.samples[i] as Sample);
    if (problem === undefined) candidates.push(i);
    else writer.refused.push({ index: i, reason: 'unstorable_row', detail: problem });
  }
  if (options.isolate) await writer.isolate(candidates);
  else await writer.write(candidates);

  const refused = writer.refused.sort((a, b) => a.index - b.index);
  const deadLetters = await insertDeadLetters(tx, batch, refused);
  if (refused.length > 0) {
    await tx.query('UPDATE batch_ledger SET dead_letter_count = $2 WHERE batch_id = $1', [
      batch.id,
      deadLetters,
    ]);
  }
  const conflicts = refused.filter((r) => r.reason === 'conflicting_duplicate').length;
  return {
    result: {
      duplicate: false,
      inserted: writer.inserted,
      deadLetters,
      unstorable: refused.length - conflicts,
      conflicts,
      ...(refused.length > 0 ? { refusedSamples: refused.map((r) => r.index) } : {}),
    },
    resolvedSeries: writer.resolved,
    parts: writer.parts,
  };
}

/** What writing one part of a batch did (applied only once the part is kept). */
interface PartOutcome {
  inserted: number;
  conflicts: RefusedSample[];
  resolved: ResolvedSeries[];
}

/** Writes the samples of one batch, whole or in isolating parts; collects what it refused. */
class SampleWriter {
  inserted = 0;
  parts = 0;
  readonly refused: RefusedSample[] = [];
  readonly resolved: ResolvedSeries[] = [];
  readonly #tx: TransactionExecutor;
  readonly #batch: Batch;
  readonly #rollups: boolean;
  /** Series resolved by parts kept so far in this transaction, consulted after the caller's cache. */
  readonly #local = new SeriesIdCache(Number.MAX_SAFE_INTEGER);
  readonly #lookup: SeriesIdLookup;
  /** Series identities the database refused to insert, with its message. */
  readonly #poison = new Map<string, string>();

  constructor(tx: TransactionExecutor, batch: Batch, cache: SeriesIdLookup, rollups: boolean) {
    this.#tx = tx;
    this.#batch = batch;
    this.#rollups = rollups;
    this.#lookup = { get: (key) => cache.get(key) ?? this.#local.get(key) };
  }

  /** All samples in one part, no savepoint: any error propagates. */
  async write(indexes: number[]): Promise<void> {
    if (indexes.length > 0) this.#keep(await this.#writePart(indexes, { stage: 'series' }));
  }

  /** Samples in parts under savepoints; a refused part is split until its refused rows are found. */
  async isolate(indexes: number[]): Promise<void> {
    // Every window first, outside the parts' savepoints (a rolled-back part would release them).
    await lockChunkWindows(
      this.#tx,
      indexes.map((i) => storedMs(this.#sample(i).timestampMs)),
    );
    // The caller saw the whole batch refused: start with its halves.
    await this.#split(indexes);
  }

  async #split(indexes: number[]): Promise<void> {
    if (indexes.length <= 1) {
      await this.#attempt(indexes);
      return;
    }
    const mid = indexes.length >>> 1;
    await this.#attempt(indexes.slice(0, mid));
    await this.#attempt(indexes.slice(mid));
  }

  async #attempt(all: number[]): Promise<void> {
    const indexes = this.#withoutPoison(all);
    if (indexes.length === 0) return;
    const tx = this.#tx;
    this.parts += 1;
    await tx.query('SAVEPOINT nexus_part');
    const at = { stage: 'series' as 'series' | 'samples' };
    let part: PartOutcome;
    try {
      part = await this.#writePart(indexes, at);
    } catch (error) {
      if (!isUnstorableError(error)) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT nexus_part');
      await tx.query('RELEASE SAVEPOINT nexus_part');
      if (indexes.length > 1) {
        await this.#split(indexes);
        return;
      }
      const index = indexes[0] as number;
      const detail = describeStoreError(error);
      this.refused.push({ index, reason: 'unstorable_row', detail });
      if (at.stage === 'series') this.#poison.set(seriesIdentity(this.#sample(index)), detail);
      return;
    }
    await tx.query('RELEASE SAVEPOINT nexus_part');
    this.#keep(part);
  }

  /** `indexes` minus the samples of series the database refused (those are refused at once). */
  #withoutPoison(indexes: number[]): number[] {
    if (this.#poison.size === 0) return indexes;
    return indexes.filter((index) => {
      const detail = this.#poison.get(seriesIdentity(this.#sample(index)));
      if (detail === undefined) return true;
      this.refused.push({ index, reason: 'unstorable_row', detail });
      return false;
    });
  }

  #keep(part: PartOutcome): void {
    this.inserted += part.inserted;
    this.refused.push(...part.conflicts);
    this.resolved.push(...part.resolved);
    this.#local.addAll(part.resolved);
  }

  #sample(index: number): Sample {
    return this.#batch.samples[index] as Sample;
  }

  /** Series, samples and rollups of these samples; `at.stage` says how far it got. */
  async #writePart(indexes: number[], at: { stage: 'series' | 'samples' }): Promise<PartOutcome> {
    const all = this.#batch.samples;
    const rows = indexes.length === all.length ? all : indexes.map((i) => all[i] as Sample);
    const n = rows.length;
    const seriesIds = new Int32Array(n);
    const timestamps = new Float64Array(n);
    const values = new Float64Array(n);
    at.stage = 'series';
    const resolved = await resolveSeries(this.#tx, rows, this.#lookup, seriesIds);
    at.stage = 'samples';
    for (let i = 0; i < n; i++) {
      const s = rows[i] as Sample;
      timestamps[i] = storedMs(s.timestampMs);
      values[i] = s.value;
    }
    // Samples of compacted windows: their series' chunks there become rows again first.
    await prepareChunkWindows(this.#tx, seriesIds, timestamps);
    const { stored, refused } = await insertSamples(this.#tx, seriesIds, timestamps, values);
    if (this.#rollups && stored.seriesIds.length > 0) {
      await queueRollups(this.#tx, stored.seriesIds, stored.timestampsMs, stored.values);
    }
    const conflicts = refused.map(({ row, storedValue }): RefusedSample => {
      const s = rows[row] as Sample;
      return {
        index: indexes[row] as number,
        reason: 'conflicting_duplicate',
        detail:
          `stored value ${storedValue}, refused value ${s.value} for ${s.metric} of ${s.uuid} ` +
          `(${s.hostname}) at ${new Date(s.timestampMs).toISOString()}`,
      };
    });
    return { inserted: stored.seriesIds.length, conflicts, resolved };
  }
}

async function resolveSeries(
  tx: TransactionExecutor,
  samples: readonly Sample[],
  cache: SeriesIdLookup,
  out: Int32Array,
): Promise<ResolvedSeries[]> {
  // Cache misses, grouped by canonical identity: identity -> sample indexes. A batch of new series
  // (a backfill file lists each series' samples together) misses on every sample: the identity of
  // the sample before is reused when it is the same series, instead of building the text again
  // (about 2.4 of 20 CPU-seconds of an embedded 1M-sample ingest, docs/performance.md).
  const missing = new Map<string, number[]>();
  let previous: Sample | undefined;
  let previousIdentity = '';
  samples.forEach((s, i) => {
    const id = cache.get(s);
    if (id !== undefined) {
      out[i] = id;
      return;
    }
    const identity = previous !== undefined && sameSeries(s, previous) ? previousIdentity : seriesIdentity(s);
    previous = s;
    previousIdentity = identity;
    const indexes = missing.get(identity);
    if (indexes === undefined) missing.set(identity, [i]);
    else indexes.push(i);
  });
  if (missing.size === 0) return [];

  const rows = [...missing].map(([identity, indexes]) => ({
    key: seriesKeyHash(identity),
    s: samples[indexes[0] as number] as Sample,
    indexes,
  }));
  rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const col = (f: (r: (typeof rows)[number]) => string): string[] => rows.map(f);
  await tx.query(
    `INSERT INTO series (series_key, cluster_id, hostname, gpu_id, uuid, device, model_name, metric,
                    container, pod, namespace, labels)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
ORDER BY 1
ON CONFLICT (series_key) DO NOTHING`,
    [
      col((r) => r.key),
      col((r) => pgText(r.s.clusterId)),
      col((r) => pgText(r.s.hostname)),
      col((r) => pgText(r.s.gpuId)),
      col((r) => pgText(r.s.uuid)),
      col((r) => pgText(r.s.device)),
      col((r) => pgText(r.s.modelName)),
      col((r) => pgText(r.s.metric)),
      col((r) => pgText(r.s.container)),
      col((r) => pgText(r.s.pod)),
      col((r) => pgText(r.s.namespace)),
      col((r) => pgLabelsJson(r.s.labels)),
    ],
  );
  const found = await tx.query<{ id: number; series_key: string }>(
    'SELECT id, series_key FROM series WHERE series_key = ANY($1::text[])',
    [col((r) => r.key)],
  );
  const byKey = new Map(found.rows.map((r) => [r.series_key, r.id]));
  return rows.map((r) => {
    const id = byKey.get(r.key);
    if (id === undefined) throw new Error(`series ${r.key} missing after insert`);
    for (const i of r.indexes) out[i] = id;
    return { key: r.s, id };
  });
}

/** The samples an insert actually stored, as parallel columns. */
interface InsertedRows {
  seriesIds: ArrayLike<number>;
  timestampsMs: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** A row the natural key refused because the stored value differs; `row` indexes the columns. */
interface ConflictingRow {
  row: number;
  storedValue: number;
}

/**
 * SQL timestamptz of a float8 ms expression, exact to the microsecond as binary COPY stores it.
 * `to_timestamp(ms / 1000)` divides in floating point: for times far from 1970 (1850, or 2025 with
 * sub-ms parts) it can land 1 us off, and the natural key then misses the stored row.
 */
const msTimestamp = (ms: string): string => `('epoch'::timestamptz + ${ms} * interval '1 millisecond')`;

/**
 * A sample's time as its row stores it (whole microseconds): the windows a write locks and the
 * hours it marks or queues must be those the stored row falls in (0.3 us before an hour is stored
 * in the next one).
 */
const storedMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Natural key of a row as text, for matching rows in memory. */
const naturalKey = (seriesId: number, tsMs: number): string => `${seriesId}:${tsMs}`;

async function insertSamples(
  tx: TransactionExecutor,
  seriesIds: Int32Array,
  timestamps: Float64Array,
  values: Float64Array,
): Promise<{ stored: InsertedRows; refused: ConflictingRow[] }> {
  const n = seriesIds.length;
  await tx.query('SAVEPOINT nexus_samples');
  try {
    let copied = 0;
    for (let start = 0; start < n; start += WRITE_CHUNK_ROWS) {
      const end = Math.min(n, start + WRITE_CHUNK_ROWS);
      copied += await tx.copyBinary(
        'samples',
        SAMPLE_COLUMNS,
        encodeSamplesCopy(seriesIds, timestamps, values, start, end),
      );
    }
    await tx.query('RELEASE SAVEPOINT nexus_samples');
    if (copied !== n) throw new Error(`COPY stored ${copied} of ${n} samples`);
    // No conflict: every row of the batch is new.
    return { stored: { seriesIds, timestampsMs: timestamps, values }, refused: [] };
  } catch (error) {
    if (sqlState(error) !== UNIQUE_VIOLATION) throw error;
    await tx.query('ROLLBACK TO SAVEPOINT nexus_samples');
    await tx.query('RELEASE SAVEPOINT nexus_samples');
  }
  const out = { seriesIds: [] as number[], timestampsMs: [] as number[], values: [] as number[] };
  // Value of each natural key this insert stored, and whether a row of the batch was matched to it.
  const insertedValue = new Map<string, number>();
  for (let start = 0; start < n; start += WRITE_CHUNK_ROWS) {
    const end = Math.min(n, start + WRITE_CHUNK_ROWS);
    const r = await tx.query<{ series_id: number; ts_ms: number; value: number }>(
      `INSERT INTO samples (series_id, ts, value)
SELECT i, ${msTimestamp('m')}, v FROM unnest($1::int4[], $2::float8[], $3::float8[]) AS u(i, m, v)
ON CONFLICT DO NOTHING
RETURNING series_id, (extract(epoch FROM ts) * 1000)::float8 AS ts_ms, value`,
      [
        numericArrayLiteral(seriesIds.subarray(start, end)),
        numericArrayLiteral(timestamps.subarray(start, end)),
        numericArrayLiteral(values.subarray(start, end)),
      ],
    );
    for (const row of r.rows) {
      out.seriesIds.push(row.series_id);
      out.timestampsMs.push(row.ts_ms);
      out.values.push(row.value);
      insertedValue.set(naturalKey(row.series_id, row.ts_ms), row.value);
    }
  }
  return { stored: out, refused: await conflictingRows(tx, seriesIds, timestamps, values, insertedValue) };
}

/**
 * The rows of an `ON CONFLICT DO NOTHING` insert that were refused for a different value than
 * the one stored under their natural key. Rows whose key this insert stored are settled in
 * memory (the first row with the stored value is the one stored; the others are identical
 * repeats or conflicts); the rest are compared with the stored rows in one query per chunk,
 * bounded by the rows' time range so only their day partitions are read.
 */
async function conflictingRows(
  tx: TransactionExecutor,
  seriesIds: Int32Array,
  timestamps: Float64Array,
  values: Float64Array,
  insertedValue: Map<string, number>,
): Promise<ConflictingRow[]> {
  const conflicts: ConflictingRow[] = [];
  const matched = new Set<string>();
  const unsettled: number[] = [];
  for (let row = 0; row < seriesIds.length; row++) {
    const key = naturalKey(seriesIds[row] as number, timestamps[row] as number);
    const stored = insertedValue.get(key);
    if (stored === undefined) unsettled.push(row);
    else if (stored === values[row] && !matched.has(key)) matched.add(key);
    else if (stored !== values[row]) conflicts.push({ row, storedValue: stored });
  }
  for (let start = 0; start < unsettled.length; start += WRITE_CHUNK_ROWS) {
    const rows = unsettled.slice(start, start + WRITE_CHUNK_ROWS);
    const ts = rows.map((row) => timestamps[row] as number);
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of ts) {
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const r = await tx.query<{ ord: number; value: number }>(
      `SELECT u.ord::int AS ord, s.value
FROM unnest($1::int4[], $2::float8[]) WITH ORDINALITY AS u(i, m, ord)
JOIN samples s ON s.series_id = u.i AND s.ts = ${msTimestamp('u.m')}
WHERE s.ts BETWEEN ${msTimestamp('$3::float8')} AND ${msTimestamp('$4::float8')}`,
      [numericArrayLiteral(rows.map((row) => seriesIds[row] as number)), numericArrayLiteral(ts), lo, hi],
    );
    for (const { ord, value } of r.rows) {
      const row = rows[ord - 1] as number;
      if (value !== values[row]) conflicts.push({ row, storedValue: value });
    }
  }
  return conflicts.sort((a, b) => a.row - b.row);
}

async function insertDeadLetters(
  tx: TransactionExecutor,
  batch: Batch,
  refused: readonly RefusedSample[],
): Promise<number> {
  const dls =
    refused.length === 0 ? batch.deadLetters : [...batch.deadLetters, ...refusalDeadLetters(batch, refused)];
  if (dls.length === 0) return 0;
  const r = await tx.query(
    `INSERT INTO dead_letters (batch_id, source, line, raw, reason, detail, dedupe_key)
SELECT $1, u.source, u.line, u.raw, u.reason, u.detail, ${deadLetterKeySql('u.')}
FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS u(source, line, raw, reason, detail, ord)
ORDER BY u.ord
ON CONFLICT (dedupe_key) DO NOTHING`,
    [
      batch.id,
      dls.map((d) => pgText(d.source)),
      // A line the column cannot hold would fail the whole batch: keep the letter, line 0.
      dls.map((d) => (Number.isSafeInteger(d.line) ? d.line : 0)),
      dls.map((d) => pgText(d.raw)),
      dls.map((d) => pgText(d.reason)),
      dls.map((d) => pgText(d.detail)),
    ],
  );
  return r.rowCount;
}
