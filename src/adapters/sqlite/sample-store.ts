/**
 * Embedded sample store on SQLite (node-sqlite3-wasm: SQLite 3.53 compiled to WebAssembly, no
 * native build, a synchronous API over a file in `DATA_DIR/sqlite`, or in memory): `start`'s
 * embedded store by default (EMBEDDED_STORE=auto; measured against PGlite in docs/performance.md).
 *
 * Every call runs synchronously inside one JavaScript turn, so a batch is one SQLite transaction
 * that nothing interleaves with: the ledger row, the samples and the dead letters commit together
 * (write-ahead log in exclusive locking mode, synchronous=NORMAL: a commit survives a crash of the
 * process). Raw samples live in a clustered (series, time) b-tree until compaction moves closed
 * 6-hour windows into per-series chunks (chunks.ts); 1-minute and 1-hour rollups are computed at
 * read time, and compaction and retention fold the buckets of what they remove into `rollups`
 * first, which reads merge in.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import sqlite3, { type Database, type Statement } from 'node-sqlite3-wasm';
import type { Batch, DeadLetter, SeriesKey } from '../../domain/types.js';
import { sampleColumns } from '../../domain/batch-codec.js';
import type { TokenStore } from '../../auth/token-store.js';
import { NexusError } from '../../errors.js';
import {
  type CompactOptions,
  type CompactResult,
  type RetentionPolicy,
  type RetentionResult,
  type SampleAggregate,
  type SampleQuery,
  type SampleStore,
  type SelectedSeries,
  type GpuSpacing,
  type SeriesFilter,
  type SeriesSelect,
  type SeriesSummary,
  type SeriesSummarySelect,
  type SpacingSelect,
  type StoredDeadLetter,
  type StoredGpu,
  type StoredSample,
  type StoredSeries,
  type WriteResult,
  chooseResolution,
  labelsMatch,
} from '../../ports/sample-store.js';
import {
  DEFAULT_DEAD_LETTER_LIMIT,
  DEFAULT_SAMPLE_LIMIT,
  SERIES_FILTER_COLUMNS,
  type SeriesRow as SqlSeriesRow,
  compareGpus,
  toStoredSeries as toSeries,
} from '../../storage/queries.js';
import { type RefusedSample, refusalDeadLetters, unstorablePointProblem } from '../../storage/refusals.js';
import { SeriesIdCache, pgText, seriesIdentity, seriesKeyHash } from '../../storage/series.js';
import {
  type Bucket,
  type ChunkCache,
  type SqliteAccess,
  WINDOW_MS,
  chunkBuckets,
  chunkValue,
  compactSeries,
  foldChunkMinutes,
  foldRows,
  mergeBucket,
  seriesSamples,
  windowOf,
} from './chunks.js';
import { SQLITE_MIGRATIONS } from './schema.js';
import { sqliteTokenStore } from './token-store.js';

// A CommonJS module: Node's ESM loader gives its exports as the default import only.
const { Database: SqliteDatabase } = sqlite3;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Rows a compaction transaction moves (at least one series' whole backlog). */
const COMPACT_ROWS_PER_TRANSACTION = 50_000;
/** Most prepared statements kept at once. */
const MAX_STATEMENTS = 256;
const HOUR_MS = 3_600_000;

/** Options of {@link createSqliteSampleStore}. */
export interface SqliteSampleStoreOptions {
  /** The database file (its directory is created if missing); omit with `memory`. */
  file?: string;
  /** Keep everything in memory and nothing on disk. */
  memory?: boolean;
  /** SQLite page cache in KiB (default 16384: 16 MiB; it lives in WebAssembly memory, which never shrinks). */
  cacheKib?: number;
  /** Prepared statements kept before the cache starts over (default 256). */
  maxStatements?: number;
  /**
   * The caller holds the only lock on the file's directory (the runtime's DATA_DIR lock), so a
   * `<file>.lock` directory left by a process that died holding the database is stale and removed.
   * Without it, such a directory refuses the open (BACKEND_UNAVAILABLE naming it).
   */
  ownsFile?: boolean;
}

type Row = Record<string, unknown>;

/** A series row as SQLite returns it: queries.ts' row with its labels as JSON text. */
type SeriesRow = Omit<SqlSeriesRow, 'labels'> & { labels: string };

const SERIES_COLUMNS =
  'id, cluster_id, hostname, gpu_id, uuid, device, model_name, metric, container, pod, namespace, labels';

/** A series row as SQLite returns it: labels as JSON text. */
function toStoredSeries(r: SeriesRow): StoredSeries {
  return toSeries({ ...r, labels: JSON.parse(r.labels) as Record<string, string> });
}

function keyOf(s: StoredSeries): SeriesKey {
  const { id: _id, ...key } = s;
  return key;
}

/**
 * `value`, or BAD_REQUEST when it holds a NUL character: the binding passes text to SQLite as a
 * C string, so it would be cut there and match something else (PostgreSQL refuses it too).
 */
function refuseNul(value: string, what: string): string {
  if (value.includes('\0')) {
    throw new NexusError('BAD_REQUEST', `${what} must not contain a NUL character`, { details: { what } });
  }
  return value;
}

/** Orders text by code point, as SQLite (and PostgreSQL's C collation) do; JavaScript's `<` compares UTF-16 units. */
function compareCodePoints(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Rows one insert statement takes (3 parameters each, far below SQLite's 32,766). */
const INSERT_GROUP = 256;
const INSERT_ONE_SQL = 'INSERT INTO samples (series_id, ts, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING';
const INSERT_GROUP_SQL = `INSERT INTO samples (series_id, ts, value) VALUES ${Array.from({ length: INSERT_GROUP }, () => '(?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`;

/** The refusal of the sample at `index` of its batch, whose (series, time) holds `stored` already. */
function conflict(
  s: SeriesKey,
  ts: number,
  value: number,
  index: number,
  stored: number | undefined,
): RefusedSample {
  return {
    index,
    reason: 'conflicting_duplicate',
    detail: `stored value ${stored}, refused value ${value} for ${s.metric} of ${s.uuid} (${s.hostname}) at ${new Date(ts).toISOString()}`,
  };
}

/** The series of the sample at `index` of `batch`, from its columns when it has them. */
function seriesAt(batch: Batch, index: number): SeriesKey {
  const columns = sampleColumns(batch);
  return columns === undefined ? batch.samples[index]! : columns.series[columns.seriesOf[index]!]!;
}

/** `samples_pYYYYMMDD`: the name PostgreSQL's day partition of `dayMs` has. */
function dayPartitionName(dayMs: number): string {
  return `samples_p${new Date(dayMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** Identity of a dead letter (source, line, reason, raw): a replay of it is stored once. */
function deadLetterKey(d: DeadLetter): string {
  return createHash('sha256').update(`${d.source}\n${d.line}\n${d.reason}\n${d.raw}`).digest('hex');
}

function normaliseLimit(limit: number | undefined, fallback: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.max(0, Math.floor(limit));
}

function aggregateOf(b: Bucket): SampleAggregate {
  return { min: b.min, max: b.max, avg: b.sum / b.count, count: b.count, last: b.last };
}

/** A SampleStore on SQLite (see the module comment). Call `migrate()` before use. */
export class SqliteSampleStore implements SampleStore {
  readonly #db: Database;
  readonly #cache = new SeriesIdCache();
  readonly #statements = new Map<string, Statement>();
  /** Per series, the end of its newest compacted window (-Infinity: none), as far as known. */
  readonly #compactedUntil = new Map<number, number>();
  /** This store's statements for chunks.ts. */
  readonly #access: SqliteAccess = {
    all: (sql, values) => this.#all(sql, values),
    run: (sql, values) => this.#stmt(sql).run((values ?? []) as never).changes,
  };
  #compacting: Promise<CompactResult> | undefined;
  #closed = false;

  readonly #maxStatements: number;

  constructor(db: Database, maxStatements = MAX_STATEMENTS) {
    this.#db = db;
    this.#maxStatements = maxStatements;
  }

  /**
   * The prepared statement of `sql`, kept until close. The texts are a bounded family (lists are
   * bound as one JSON value); past `maxStatements` the cache starts over anyway (each
   * statement holds WebAssembly memory until finalized), at the start of an operation: one in
   * progress holds statements it prepared.
   */
  #stmt(sql: string): Statement {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #finalizeStatements(): void {
    for (const s of this.#statements.values()) s.finalize();
    this.#statements.clear();
  }

  #all<R>(sql: string, values: unknown[] = []): R[] {
    return this.#stmt(sql).all(values as never) as R[];
  }

  /**
   * Whether series `id` may hold anything in [from, to): a raw row in it, a chunk whose samples
   * meet it, or (with `folded`) a bucket folded into `rollups` starting in it (or the hour before).
   * A few index seeks: summaries and spacing skip idle series with it instead of running their
   * reads per window (10,000 idle series took seconds, docs/storage.md).
   */
  #mayHoldIn(id: number, from: number, to: number, folded: boolean): boolean {
    const rows = this.#all<{ any: number }>(
      `SELECT EXISTS (SELECT 1 FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3)
           OR EXISTS (SELECT 1 FROM chunks WHERE series_id = ?1 AND window_start > ?2 - ?4
                        AND window_start < ?3 AND last_ts >= ?2 AND first_ts < ?3)
           OR (?5 AND EXISTS (SELECT 1 FROM rollups WHERE res IN (60000, 3600000) AND series_id = ?1
                                AND bucket >= ?2 - 3600000 AND bucket < ?3)) AS any`,
      [id, from, to, WINDOW_MS, folded ? 1 : 0],
    );
    return rows[0]?.any === 1;
  }

  /**
   * The first row of `sql`. Read to the end (`all`), never with the binding's `get`: that leaves
   * the statement stepping, and an unfinished read keeps its transaction open, so checkpoints
   * could not reset the write-ahead log.
   */
  #get<R>(sql: string, values: unknown[] = []): R | undefined {
    return this.#all<R>(sql, values)[0];
  }

  /** Run `fn` unless closed, with SQLite's errors as NexusErrors. */
  #run<T>(operation: string, fn: () => T): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new NexusError('STORE_CLOSED', 'sqlite sample store is closed'));
    }
    try {
      if (this.#statements.size >= this.#maxStatements && !this.#db.inTransaction) this.#finalizeStatements();
      return Promise.resolve(fn());
    } catch (error) {
      if (error instanceof NexusError) return Promise.reject(error);
      const message = error instanceof Error ? error.message : String(error);
      return Promise.reject(
        new NexusError('BACKEND_UNAVAILABLE', `sqlite failed in ${operation}: ${message}`, {
          cause: error,
          details: { operation },
        }),
      );
    }
  }

  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (error) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  migrate(): Promise<void> {
    return this.#run('migrate', () => {
      const current = Number(this.#db.get('PRAGMA user_version')?.user_version ?? 0);
      for (const m of SQLITE_MIGRATIONS) {
        if (m.version <= current) continue;
        this.#transaction(() => {
          this.#db.exec(m.sql);
          this.#db.exec(`PRAGMA user_version = ${m.version}`);
        });
      }
    });
  }

  writeBatch(batch: Batch): Promise<WriteResult> {
    return this.#run('writeBatch', () => this.#write(batch));
  }

  #write(batch: Batch): WriteResult {
    const resolved: { key: SeriesKey; id: number }[] = [];
    // Decoded batches carry columns: one series lookup per distinct series, no object per sample.
    const columns = sampleColumns(batch);
    const samples = columns === undefined ? batch.samples : undefined;
    const count = columns?.times.length ?? samples!.length;
    const result = this.#transaction((): WriteResult => {
      const ledger = this.#stmt(
        `INSERT INTO batch_ledger (batch_id, source, sample_count, dead_letter_count, committed_ms)
         VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING`,
      ).run([refuseNul(batch.id, 'a batch id'), pgText(batch.source), count, Date.now()]);
      if (ledger.changes === 0) {
        return { duplicate: true, inserted: 0, deadLetters: 0, unstorable: 0, conflicts: 0 };
      }
      const stored = this.#stmt('SELECT value FROM samples WHERE series_id = ? AND ts = ?');
      // Samples to insert as rows, in batch order: index, series id, time, value.
      const pending: number[] = [];
      // Series first seen in this batch: looked up like the cache (no identity text per sample).
      const fresh = new SeriesIdCache(Number.MAX_SAFE_INTEGER);
      const chunks: ChunkCache = new Map();
      const refused: RefusedSample[] = [];
      let inserted = 0;
      const idOfIndex: (number | undefined)[] = columns === undefined ? [] : new Array(columns.series.length);
      const idOf = (key: SeriesKey): number => {
        let id = this.#cache.get(key) ?? fresh.get(key);
        if (id === undefined) {
          id = this.#seriesId(key, seriesIdentity(key));
          fresh.addAll([{ key, id }]);
          resolved.push({ key, id });
        }
        return id;
      };
      for (let index = 0; index < count; index++) {
        let ts: number;
        let value: number;
        let key: SeriesKey;
        let k = -1;
        if (columns !== undefined) {
          k = columns.seriesOf[index]!;
          key = columns.series[k]!;
          ts = columns.times[index]!;
          value = columns.values[index]!;
        } else {
          key = samples![index]!;
          ts = samples![index]!.timestampMs;
          value = samples![index]!.value;
        }
        const problem = unstorablePointProblem(ts, value);
        if (problem !== undefined) {
          refused.push({ index, reason: 'unstorable_row', detail: problem });
          continue;
        }
        const id = k < 0 ? idOf(key) : (idOfIndex[k] ??= idOf(key));
        // A time in a compacted window may be in its chunk: the chunk's value is the stored one.
        const inChunk = ts < this.#compactedEnd(id) ? chunkValue(this.#access, id, ts, chunks) : undefined;
        if (inChunk === undefined) pending.push(index, id, ts, value);
        else if (inChunk !== value) refused.push(conflict(key, ts, value, index, inChunk));
      }
      // Rows go in groups of INSERT_GROUP: one statement each instead of one per sample. A group
      // that inserted fewer rows than it holds had repeats of a stored (series, time): those rows
      // are compared with what is stored (the first of repeats inside a group is what got in).
      const group = this.#stmt(INSERT_GROUP_SQL);
      const single = this.#stmt(INSERT_ONE_SQL);
      for (let at = 0; at < pending.length;) {
        // Whole groups, then the rest one by one (two statement texts, not one per size).
        const rows = pending.length - at >= 4 * INSERT_GROUP ? INSERT_GROUP : 1;
        const values: number[] = [];
        for (let k = 0; k < rows; k++)
          values.push(pending[at + 4 * k + 1]!, pending[at + 4 * k + 2]!, pending[at + 4 * k + 3]!);
        const changes = (rows === INSERT_GROUP ? group : single).run(values).changes;
        inserted += changes;
        if (changes < rows) {
          for (let k = 0; k < rows; k++) {
            const [index, id, ts, value] = pending.slice(at + 4 * k, at + 4 * k + 4) as [
              number,
              number,
              number,
              number,
            ];
            const before = (stored.all([id, ts]) as { value: number }[])[0]?.value;
            if (before !== value) refused.push(conflict(seriesAt(batch, index), ts, value, index, before));
          }
        }
        at += 4 * rows;
      }
      refused.sort((a, b) => a.index - b.index);
      const letters =
        refused.length === 0
          ? batch.deadLetters
          : [...batch.deadLetters, ...refusalDeadLetters(batch, refused)];
      const deadLetters = this.#insertDeadLetters(batch, letters);
      if (deadLetters > 0) {
        this.#stmt('UPDATE batch_ledger SET dead_letter_count = ? WHERE batch_id = ?').run([
          deadLetters,
          batch.id,
        ]);
      }
      const conflicts = refused.filter((r) => r.reason === 'conflicting_duplicate').length;
      return {
        duplicate: false,
        inserted,
        deadLetters,
        unstorable: refused.length - conflicts,
        conflicts,
        ...(refused.length > 0 ? { refusedSamples: refused.map((r) => r.index) } : {}),
      };
    });
    // Only committed ids enter the cache: a rolled back transaction may have handed out others.
    if (resolved.length > 0) this.#cache.addAll(resolved);
    return result;
  }

  /** End of the newest compacted window of a series (-Infinity when it has none). */
  #compactedEnd(seriesId: number): number {
    let end = this.#compactedUntil.get(seriesId);
    if (end === undefined) {
      const w = this.#get<{ w: number | null }>(
        'SELECT max(window_start) AS w FROM chunks WHERE series_id = ?',
        [seriesId],
      )?.w;
      end = w === null || w === undefined ? -Infinity : w + WINDOW_MS;
      this.#compactedUntil.set(seriesId, end);
    }
    return end;
  }

  /** The id of the series of `s`, created when new. */
  #seriesId(s: SeriesKey, identity: string): number {
    const hash = seriesKeyHash(identity);
    this.#stmt(
      `INSERT INTO series (key_hash, cluster_id, hostname, gpu_id, uuid, device, model_name, metric,
         container, pod, namespace, labels)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING`,
    ).run([
      hash,
      pgText(s.clusterId),
      pgText(s.hostname),
      pgText(s.gpuId),
      pgText(s.uuid),
      pgText(s.device),
      pgText(s.modelName),
      pgText(s.metric),
      pgText(s.container),
      pgText(s.pod),
      pgText(s.namespace),
      // JSON escapes NUL as \u0000: the labels keep it, unlike the text columns.
      JSON.stringify(s.labels),
    ]);
    return (this.#get<{ id: number }>('SELECT id FROM series WHERE key_hash = ?', [hash]) as { id: number })
      .id;
  }

  #insertDeadLetters(batch: Batch, letters: readonly DeadLetter[]): number {
    if (letters.length === 0) return 0;
    const insert = this.#stmt(
      `INSERT INTO dead_letters (batch_id, source, line, raw, reason, detail, received_ms, dedupe_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
    );
    const now = Date.now();
    let n = 0;
    for (const d of letters) {
      const line = Number.isSafeInteger(d.line) ? d.line : 0;
      const letter = { ...d, source: pgText(d.source), raw: pgText(d.raw), reason: pgText(d.reason), line };
      n += insert.run([
        batch.id,
        letter.source,
        line,
        letter.raw,
        letter.reason,
        pgText(d.detail),
        now,
        deadLetterKey(letter),
      ]).changes;
    }
    return n;
  }

  /** Series rows matching the equality filters of `filter` (labels and prefixes left to the caller). */
  #seriesWhere(filter: SeriesFilter): StoredSeries[] {
    const where: string[] = [];
    const values: unknown[] = [];
    if (filter.metrics !== undefined) {
      if (filter.metrics.length === 0) return [];
      where.push('metric IN (SELECT value FROM json_each(?))');
      values.push(JSON.stringify(filter.metrics.map((m) => refuseNul(m, 'a metric name'))));
    }
    for (const [field, column] of Object.entries(SERIES_FILTER_COLUMNS)) {
      const value = filter[field as keyof typeof SERIES_FILTER_COLUMNS];
      if (value !== undefined) {
        where.push(`${column} = ?`);
        values.push(refuseNul(value, field));
      }
    }
    const rows = this.#all<SeriesRow>(
      `SELECT ${SERIES_COLUMNS} FROM series${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
      values,
    );
    const prefix = filter.metricPrefix;
    return rows
      .map(toStoredSeries)
      .filter((s) => (prefix === undefined ? true : s.metric.startsWith(prefix)))
      .filter((s) => labelsMatch(s.labels, filter.labels));
  }

  /** The series of the queried GPU (one MIG instance's with `migInstance`, else the GPU's own). */
  #gpuSeries(q: SampleQuery): StoredSeries[] {
    const filter: SeriesFilter =
      'uuid' in q.gpu
        ? { uuid: q.gpu.uuid }
        : { clusterId: q.gpu.clusterId, hostname: q.gpu.hostname, gpuId: q.gpu.gpuId };
    if (q.metrics !== undefined && q.metrics.length > 0) filter.metrics = q.metrics;
    // A MIG instance's series carry its GPU_I_ID label; the GPU's own carry none or an empty one.
    const instance = q.migInstance;
    return this.#seriesWhere(filter).filter((s) =>
      instance === undefined
        ? !Object.hasOwn(s.labels, 'GPU_I_ID') || s.labels.GPU_I_ID === ''
        : Object.hasOwn(s.labels, 'GPU_I_ID') && s.labels.GPU_I_ID === instance,
    );
  }

  querySamples(query: SampleQuery): Promise<StoredSample[]> {
    return this.#run('querySamples', () => {
      const limit = normaliseLimit(query.limit, DEFAULT_SAMPLE_LIMIT);
      if (limit === 0) return [];
      const desc = query.order !== 'asc';
      const resolution = chooseResolution(query);
      // Ties on time are ordered by metric, then series id (as the SQL stores do).
      const series = this.#gpuSeries(query).sort(
        (a, b) => compareCodePoints(a.metric, b.metric) || a.id - b.id,
      );
      const from = query.startMs ?? -Infinity;
      const to = query.endMs ?? Infinity;
      type Point = { t: number; rank: number; value: number; aggregate?: SampleAggregate };
      const points: Point[] = [];
      series.forEach((s, rank) => {
        if (resolution === 'raw') {
          const got = seriesSamples(this.#access, s.id, from, to, desc, limit);
          got.ts.forEach((t, i) => points.push({ t, rank, value: got.values[i]! }));
          return;
        }
        const bucketMs = resolution === '1m' ? MINUTE_MS : HOUR_MS;
        const start =
          query.startMs === undefined ? -Infinity : Math.floor(query.startMs / bucketMs) * bucketMs;
        for (const b of this.#buckets(s.id, bucketMs, start, to, desc, limit)) {
          const aggregate = aggregateOf(b);
          points.push({ t: b.bucket, rank, value: aggregate.avg, aggregate });
        }
      });
      points.sort((a, b) => (desc ? b.t - a.t || b.rank - a.rank : a.t - b.t || a.rank - b.rank));
      const keys = series.map(keyOf);
      return points.slice(0, limit).map((p) => {
        const key = keys[p.rank]!;
        return p.aggregate === undefined
          ? { ...key, timestampMs: p.t, value: p.value }
          : { ...key, timestampMs: p.t, value: p.value, aggregate: p.aggregate };
      });
    });
  }

  /**
   * The first `limit` rollup buckets (in `desc` or ascending order) of one series whose start lies
   * in [from, to]: those of the raw samples stored now merged with those retention folded before
   * deleting raw samples. A bucket among the first `limit` of the merge is among the first `limit`
   * of each side it has a part in, so each side is read with the limit.
   */
  #buckets(
    seriesId: number,
    bucketMs: number,
    from: number,
    to: number,
    desc: boolean,
    limit: number,
  ): Bucket[] {
    const dir = desc ? 'DESC' : 'ASC';
    const raw = this.#all<Bucket>(
      `SELECT g.bucket, g.min, g.max, g.sum, g.count, g.lastTs,
         (SELECT value FROM samples WHERE series_id = ?1 AND ts = g.lastTs) AS last
       FROM (SELECT floor(ts / ?2) * ?2 AS bucket, min(value) AS min, max(value) AS max,
               sum(value) AS sum, count(*) AS count, max(ts) AS lastTs
             FROM samples WHERE series_id = ?1 AND ts >= ?3 AND ts < ?4 + ?2 GROUP BY 1) AS g
       WHERE g.bucket <= ?4
       ORDER BY g.bucket ${dir} LIMIT ?5`,
      [seriesId, bucketMs, from, to, limit],
    );
    const folded = this.#all<Bucket>(
      `SELECT bucket, min, max, sum, count, last, last_ts AS lastTs FROM rollups
       WHERE res = ? AND series_id = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ${dir} LIMIT ?`,
      [bucketMs, seriesId, from, to, limit],
    );
    // A chunk's minutes are computed from it (its hours were folded when it was written).
    const fromChunks =
      bucketMs === MINUTE_MS ? chunkBuckets(this.#access, seriesId, bucketMs, from, to, desc, limit) : [];
    if (folded.length === 0 && fromChunks.length === 0) return raw;
    const byBucket = new Map<number, Bucket>();
    for (const b of [...folded, ...fromChunks, ...raw]) {
      const into = byBucket.get(b.bucket);
      if (into === undefined) byBucket.set(b.bucket, { ...b });
      else mergeBucket(into, b);
    }
    const merged = [...byBucket.values()].sort((a, b) => (desc ? b.bucket - a.bucket : a.bucket - b.bucket));
    return limit < 0 ? merged : merged.slice(0, limit);
  }

  listGpus(clusterId?: string): Promise<StoredGpu[]> {
    return this.#run('listGpus', () => {
      const rows = this.#all<Row>(
        `SELECT DISTINCT cluster_id, hostname, gpu_id, uuid, device, model_name FROM series
         ${clusterId === undefined ? '' : 'WHERE cluster_id = ?'}`,
        clusterId === undefined ? [] : [refuseNul(clusterId, 'clusterId')],
      );
      const gpus = new Map<string, StoredGpu>();
      for (const r of rows) {
        const gpu: StoredGpu = {
          clusterId: r.cluster_id as string,
          hostname: r.hostname as string,
          gpuId: r.gpu_id as string,
          uuid: r.uuid as string,
          device: r.device as string,
          modelName: r.model_name as string,
        };
        gpus.set(JSON.stringify([gpu.clusterId, gpu.hostname, gpu.gpuId, gpu.uuid]), gpu);
      }
      return [...gpus.values()].sort(compareGpus);
    });
  }

  latestSamples(clusterId?: string): Promise<StoredSample[]> {
    return this.#run('latestSamples', () => {
      // The newest row and the newest chunk's last sample of each series: one probe each.
      const rows = this.#all<SeriesRow & { rts: number | null; rv: number; cts: number | null; cv: number }>(
        `SELECT ${SERIES_COLUMNS.split(', ')
          .map((c) => `se.${c}`)
          .join(', ')}, sa.ts AS rts, sa.value AS rv, c.last_ts AS cts, c.last_value AS cv
         FROM series se
         LEFT JOIN samples sa ON sa.series_id = se.id
           AND sa.ts = (SELECT max(ts) FROM samples WHERE series_id = se.id)
         LEFT JOIN chunks c ON c.series_id = se.id
           AND c.window_start = (SELECT max(window_start) FROM chunks WHERE series_id = se.id)
         WHERE (sa.ts IS NOT NULL OR c.last_ts IS NOT NULL)
         ${clusterId === undefined ? '' : 'AND se.cluster_id = ?'}
         ORDER BY se.cluster_id, se.hostname, se.gpu_id, se.metric, se.id`,
        clusterId === undefined ? [] : [refuseNul(clusterId, 'clusterId')],
      );
      return rows.map((r) => {
        const fromRow = r.cts === null || (r.rts !== null && r.rts > r.cts);
        return {
          ...keyOf(toStoredSeries(r)),
          timestampMs: fromRow ? r.rts! : r.cts!,
          value: fromRow ? r.rv : r.cv,
        };
      });
    });
  }

  selectSeries(select: SeriesSelect, signal?: AbortSignal): Promise<SelectedSeries[]> {
    return this.#run('selectSeries', () => {
      signal?.throwIfAborted();
      const chosen = this.#seriesWhere(select.filter).filter((s) => select.accept?.(s) ?? true);
      const out: SelectedSeries[] = [];
      let total = 0;
      const budget = select.latestOnly === true ? undefined : select.maxSamples;
      for (const series of chosen) {
        // With a budget, read at most one sample past what is left of it (-1: no limit).
        const got = seriesSamples(
          this.#access,
          series.id,
          select.startMs,
          select.endMs,
          select.latestOnly === true,
          select.latestOnly === true ? 1 : budget === undefined ? -1 : budget + 1 - total,
        );
        if (got.ts.length === 0) continue;
        total += got.ts.length;
        if (budget !== undefined && total > budget) {
          throw new NexusError(
            'READ_BUDGET_EXCEEDED',
            `the selection holds more than ${select.maxSamples} samples in the window; narrow the selectors or the time range`,
            { details: { maxSamples: select.maxSamples } },
          );
        }
        out.push({ series, timestamps: got.ts, values: got.values });
      }
      return out;
    });
  }

  /**
   * Per series of the filter, the totals of its buckets of each window's resolution that start in
   * the window (its samples there for `raw`): the same rows, chunks and folded buckets reads merge.
   */
  summarizeSeries(select: SeriesSummarySelect, signal?: AbortSignal): Promise<SeriesSummary[]> {
    return this.#run('summarizeSeries', () => {
      signal?.throwIfAborted();
      const windows = [select, ...(select.more ?? [])];
      // The span the reads below may touch: a bucket starting before a window's end holds samples
      // up to the bucket's end (windows are meant to be aligned, but nothing is lost if not).
      const from = Math.min(...windows.map((w) => w.startMs));
      const to = Math.max(
        ...windows.map((w) =>
          w.resolution === 'raw' ? w.endMs : w.endMs + (w.resolution === '1m' ? MINUTE_MS : HOUR_MS),
        ),
      );
      const out: SeriesSummary[] = [];
      for (const series of this.#seriesWhere(select.filter)) {
        if (!this.#mayHoldIn(series.id, from, to, true)) continue;
        const total = { count: 0, sum: 0, min: Infinity, max: -Infinity };
        for (const w of windows) {
          if (w.resolution === 'raw') {
            const got = seriesSamples(this.#access, series.id, w.startMs, w.endMs, false, -1);
            got.values.forEach((v, i) => {
              if (got.ts[i]! >= w.endMs) return;
              total.count += 1;
              total.sum += v;
              total.min = Math.min(total.min, v);
              total.max = Math.max(total.max, v);
            });
            continue;
          }
          const res = w.resolution === '1m' ? MINUTE_MS : HOUR_MS;
          // Buckets start on multiples of their width: those in [startMs, endMs).
          const firstBucket = Math.ceil(w.startMs / res) * res;
          if (firstBucket >= w.endMs) continue;
          for (const b of this.#buckets(series.id, res, firstBucket, w.endMs - 1, false, -1)) {
            total.count += b.count;
            total.sum += b.sum;
            total.min = Math.min(total.min, b.min);
            total.max = Math.max(total.max, b.max);
          }
        }
        if (total.count > 0) out.push({ series, ...total });
      }
      return out;
    });
  }

  /**
   * Per GPU (cluster, host, index, value of the instance label) with samples of the filter's series
   * in [startMs, endMs): its distinct sample times and the median gap between consecutive ones
   * (the mean of the middle two for an even count, as PostgreSQL's percentile_cont; null with one).
   */
  sampleSpacing(select: SpacingSelect, signal?: AbortSignal): Promise<GpuSpacing[]> {
    return this.#run('sampleSpacing', () => {
      signal?.throwIfAborted();
      const label = select.instanceLabel;
      const keyOfGpu = (g: Pick<GpuSpacing, 'clusterId' | 'hostname' | 'gpuId' | 'instance'>): string =>
        JSON.stringify([g.clusterId, g.hostname, g.gpuId, g.instance]);
      const excluded = new Set((select.exclude ?? []).map(keyOfGpu));
      const gpus = new Map<
        string,
        { gpu: Omit<GpuSpacing, 'timestamps' | 'medianMs'>; times: Set<number> }
      >();
      for (const series of this.#seriesWhere(select.filter)) {
        const gpu = {
          clusterId: series.clusterId,
          hostname: series.hostname,
          gpuId: series.gpuId,
          instance: Object.hasOwn(series.labels, label) ? series.labels[label]! : '',
        };
        const key = keyOfGpu(gpu);
        if (excluded.has(key) || !this.#mayHoldIn(series.id, select.startMs, select.endMs, false)) continue;
        const got = seriesSamples(this.#access, series.id, select.startMs, select.endMs, false, -1);
        const times = got.ts.filter((t) => t < select.endMs);
        if (times.length === 0) continue;
        let entry = gpus.get(key);
        if (entry === undefined) gpus.set(key, (entry = { gpu, times: new Set() }));
        for (const t of times) entry.times.add(t);
      }
      return [...gpus.values()]
        .map(({ gpu, times }) => {
          const sorted = [...times].sort((a, b) => a - b);
          const gaps = sorted
            .slice(1)
            .map((t, i) => t - sorted[i]!)
            .sort((a, b) => a - b);
          const mid = gaps.length >> 1;
          const medianMs =
            gaps.length === 0 ? null : gaps.length % 2 === 1 ? gaps[mid]! : (gaps[mid - 1]! + gaps[mid]!) / 2;
          return { ...gpu, timestamps: sorted.length, medianMs };
        })
        .sort((a, b) => compareCodePoints(keyOfGpu(a), keyOfGpu(b)));
    });
  }

  listDeadLetters(options: { limit?: number; source?: string } = {}): Promise<StoredDeadLetter[]> {
    return this.#run('listDeadLetters', () => {
      const limit = normaliseLimit(options.limit, DEFAULT_DEAD_LETTER_LIMIT);
      const rows = this.#all<Row>(
        `SELECT id, source, line, raw, reason, detail, received_ms FROM dead_letters
         ${options.source === undefined ? '' : 'WHERE source = ?'} ORDER BY id DESC LIMIT ?`,
        options.source === undefined ? [limit] : [refuseNul(options.source, 'source'), limit],
      );
      return rows.map((r) => ({
        id: Number(r.id),
        source: r.source as string,
        line: Number(r.line),
        raw: r.raw as string,
        reason: r.reason as string,
        detail: r.detail as string,
        receivedAtMs: r.received_ms as number,
      }));
    });
  }

  countSamples(): Promise<number> {
    return this.#run('countSamples', () =>
      Number(
        this.#get<{ n: number }>(
          'SELECT (SELECT count(*) FROM samples) + (SELECT coalesce(sum(n), 0) FROM chunks) AS n',
        )?.n ?? 0,
      ),
    );
  }

  /**
   * Delete raw samples (rows and chunks) older than `rawMs` and folded buckets older than
   * `rollupMs`, both measured back from {@link #retentionAnchor} and rounded down to a 6-hour
   * window (0 keeps everything). The 1m and 1h buckets of the rows deleted are folded into
   * `rollups` first (a chunk's were folded when it was written), in the same transaction.
   * `deletedRows` counts samples and buckets deleted.
   */
  applyRetention(policy: RetentionPolicy): Promise<RetentionResult> {
    return this.#run('applyRetention', () => {
      const result = this.#transaction((): RetentionResult => {
        const anchor = this.#retentionAnchor(policy.nowMs ?? Date.now());
        let deletedRows = 0;
        if (policy.rawMs > 0) {
          const bound = windowOf(anchor - policy.rawMs);
          foldRows(this.#access, 'ts < ?', [bound]);
          foldChunkMinutes(this.#access, bound);
          deletedRows += this.#access.run('DELETE FROM samples WHERE ts < ?', [bound]);
          deletedRows += Number(
            this.#get<{ n: number }>('SELECT coalesce(sum(n), 0) AS n FROM chunks WHERE window_start < ?', [
              bound,
            ])?.n ?? 0,
          );
          this.#access.run('DELETE FROM chunks WHERE window_start < ?', [bound]);
          // Series whose chunks went answer `#compactedEnd` from the table again.
          this.#compactedUntil.clear();
        }
        if (policy.rollupMs > 0) {
          const bound = windowOf(anchor - policy.rollupMs);
          // The hours of a window still held as a chunk exist only here: kept while the chunk is.
          deletedRows += this.#access.run(
            `DELETE FROM rollups WHERE bucket < ?1 AND NOT (res = 3600000 AND EXISTS (SELECT 1 FROM chunks c
               WHERE c.series_id = rollups.series_id AND c.window_start = floor(rollups.bucket / ?2) * ?2))`,
            [bound, WINDOW_MS],
          );
        }
        return { dropped: [], deletedRows };
      });
      if (result.deletedRows > 0) this.#db.exec('PRAGMA incremental_vacuum');
      return result;
    });
  }

  /**
   * Move the raw samples of every window that ended `hotMs` or more before `nowMs` into chunks
   * (chunks.ts), about 50,000 rows per transaction, yielding to the event loop between them
   * (writes and reads go on meanwhile; a late sample written into a window already done waits for
   * the next pass). Idempotent: a second pass finds no rows to move. One pass at a time.
   * `droppedPartitions` names the days (as PostgreSQL's day partitions) left without rows.
   */
  compact(options: CompactOptions): Promise<CompactResult> {
    if (this.#closed) return Promise.reject(new NexusError('STORE_CLOSED', 'sqlite sample store is closed'));
    // Passes run one after the other, each with its own options.
    const pass = (this.#compacting ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.#compact(options));
    this.#compacting = pass;
    void pass.then(
      () => this.#compacting === pass && (this.#compacting = undefined),
      () => this.#compacting === pass && (this.#compacting = undefined),
    );
    return pass;
  }

  async #compact(options: CompactOptions): Promise<CompactResult> {
    const horizon = windowOf((options.nowMs ?? Date.now()) - options.hotMs);
    const ids = (
      await this.#run('compact', () => this.#all<{ id: number }>('SELECT id FROM series ORDER BY id'))
    ).map((r) => r.id);
    const held = new Map<number, number>();
    let next = 0;
    let movedRows = 0;
    while (next < ids.length && !this.#closed) {
      await this.#run('compact', () =>
        this.#transaction(() => {
          // Up to a budget of rows a transaction, so the event loop is never held long.
          const start = movedRows;
          while (next < ids.length && movedRows - start < COMPACT_ROWS_PER_TRANSACTION) {
            const id = ids[next++]!;
            const rows = compactSeries(this.#access, id, horizon, held);
            if (rows > 0) this.#compactedUntil.set(id, Math.max(this.#compactedEnd(id), horizon));
            movedRows += rows;
          }
        }),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    const moved = held;
    if (moved.size > 0 && !this.#closed)
      await this.#run('compact', () => this.#db.exec('PRAGMA incremental_vacuum'));
    const windows = [...moved.keys()].sort((a, b) => a - b);
    for (const w of windows) options.onWindow?.({ startMs: w, samples: moved.get(w)! });
    const days = new Set(
      windows.map((w) => Math.floor(w / DAY_MS) * DAY_MS).filter((d) => d + DAY_MS <= horizon),
    );
    return {
      windows: windows.length,
      samples: [...moved.values()].reduce((a, b) => a + b, 0),
      droppedPartitions: [...days].sort((a, b) => a - b).map(dayPartitionName),
    };
  }

  /**
   * What retention measures from, as on PostgreSQL: `nowMs`, or the end of the newest day holding
   * a raw sample when that is earlier, so a store holding only old data (a backfill, a machine
   * that was off) is not emptied by its first pass. One probe of the (series, time) key per series.
   */
  #retentionAnchor(nowMs: number): number {
    const found = this.#get<{ r: number | null; c: number | null }>(
      `SELECT max((SELECT max(ts) FROM samples WHERE series_id = s.id AND ts <= ?1)) AS r,
              max((SELECT max(last_ts) FROM chunks WHERE series_id = s.id AND last_ts <= ?1)) AS c
       FROM series s`,
      [nowMs],
    );
    const newest =
      found === undefined || (found.r === null && found.c === null)
        ? null
        : Math.max(found.r ?? -Infinity, found.c ?? -Infinity);
    if (newest === null || newest === undefined) return nowMs;
    return Math.min(nowMs, Math.floor(newest / DAY_MS) * DAY_MS + DAY_MS);
  }

  /** The API token store in this database (src/auth/token-store.ts's port; `tokenStoreOf` finds it). */
  tokenStore(): TokenStore {
    return sqliteTokenStore((operation, fn) =>
      this.#run(operation, () => fn((sql, values) => this.#all(sql, values ?? []))),
    );
  }

  ping(): Promise<void> {
    return this.#run('ping', () => {
      this.#db.get('SELECT 1');
    });
  }

  /** Finalize the statements and close the database. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#finalizeStatements();
    this.#db.close();
    return Promise.resolve();
  }
}

/**
 * Open (or create) an SQLite sample store. Call `migrate()` before use.
 * @throws NexusError BACKEND_UNAVAILABLE when the file cannot be opened as an SQLite database
 */
export function createSqliteSampleStore(options: SqliteSampleStoreOptions): SqliteSampleStore {
  if (options.memory !== true && options.file === undefined) {
    throw new NexusError('CONFIG_INVALID', 'the sqlite sample store needs a file, or memory: true');
  }
  let db: Database | undefined;
  try {
    if (options.memory === true) db = new SqliteDatabase(':memory:');
    else {
      mkdirSync(dirname(options.file!), { recursive: true });
      // The WebAssembly build locks a database by creating this directory; a crash leaves it.
      const lock = `${options.file!}.lock`;
      if (existsSync(lock)) {
        if (options.ownsFile !== true) {
          throw new Error(`${lock} exists: another process holds the database, or one died holding it`);
        }
        rmSync(lock, { recursive: true, force: true });
      }
      db = new SqliteDatabase(options.file!);
    }
    // One process owns the file (the runtime's DATA_DIR lock): exclusive locking lets the
    // WebAssembly build, which has no shared memory, run the write-ahead log. Set before the first
    // access, or SQLite asks for shared memory and cannot open a WAL database at all.
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    // Pages freed by compaction and retention go back to the file system (`incremental_vacuum`
    // after each pass) instead of staying in the file; settable only before the first table.
    db.exec('PRAGMA auto_vacuum = INCREMENTAL');
    if (options.memory !== true) db.get('PRAGMA journal_mode = WAL');
    // With the WAL, NORMAL syncs at checkpoints, not at every commit: a commit survives a crash of
    // the process; an operating system crash can lose the last ones (PGlite runs with fsync off).
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec(`PRAGMA cache_size = -${options.cacheKib ?? 16_384}`);
    // Reading the schema fails here, not at the first write, when the file is no database.
    db.get('PRAGMA user_version');
    return new SqliteSampleStore(db, options.maxStatements);
  } catch (error) {
    db?.close();
    const message = error instanceof Error ? error.message : String(error);
    throw new NexusError(
      'BACKEND_UNAVAILABLE',
      `cannot open the SQLite database ${options.memory === true ? 'in memory' : options.file}: ${message}`,
      { cause: error },
    );
  }
}
