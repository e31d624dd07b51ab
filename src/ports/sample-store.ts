/**
 * Sample store port: durable time series of GPU samples, the batch ledger that makes writes
 * idempotent, and the dead-letter list.
 *
 * Contract, for every adapter:
 * - `writeBatch` is atomic: the ledger entry, the samples and the dead letters of one batch commit
 *   together or not at all. A batch id already in the ledger writes nothing and returns
 *   `{ duplicate: true }`. A sample whose natural key (series, time) is already stored is skipped,
 *   so replaying the same input under other batch ids adds nothing either.
 * - One bad row never costs its batch: a sample the database refuses (a data or constraint error,
 *   a field too long to index, a time outside years 0001-9999, a non-finite value) is isolated and
 *   stored as a dead letter with reason `unstorable_row`; every other sample of the batch is stored
 *   in the same transaction. Retryable errors (connection loss, ...) still fail the whole write.
 * - A sample whose natural key is already stored (or came earlier in the same batch) with a
 *   different value is refused: the stored value stays, and the refused one becomes a dead letter
 *   with reason `conflicting_duplicate`. An identical duplicate is a replay and stays silent.
 * - When `writeBatch` resolves, the data is durable (as durable as the backend is).
 * - Queries return samples ordered by time (newest first unless `order: 'asc'`). At a rollup
 *   resolution ('1m', '1h') each returned sample is one bucket of one series: its time is the
 *   bucket start, its value the average, and `aggregate` carries min/max/avg/count/last. Rollups
 *   are written in the same transaction as the samples, so they are never behind the raw data.
 * - After `close()`, every method rejects with `STORE_CLOSED`.
 */
import type { Batch, DeadLetter, Sample, SeriesKey } from '../domain/types.js';

export interface WriteResult {
  /** True when the batch id was already in the ledger and nothing was written. */
  duplicate: boolean;
  /** Samples newly stored (duplicates by natural key excluded). */
  inserted: number;
  /**
   * Dead letters stored: the batch's own plus one per sample refused by the store (`unstorable`
   * + `conflicts`).
   */
  deadLetters: number;
  /** Samples the database could not store, each now a dead letter with reason `unstorable_row`. */
  unstorable: number;
  /**
   * Samples refused because their natural key holds a different value, each now a dead letter with
   * reason `conflicting_duplicate`. Identical duplicates are not counted.
   */
  conflicts: number;
  /**
   * Indexes in `batch.samples` of the samples refused (`unstorable` + `conflicts`), ascending;
   * absent when none was. The live hierarchy skips them.
   */
  refusedSamples?: number[];
}

/** Dead-letter reason codes the sample store itself produces, with what they mean. */
export const STORE_DEAD_LETTER_REASONS = {
  unstorable_row:
    'the database refused this sample (e.g. a field too long to index, a time outside years 0001-9999, a non-finite value); the rest of its batch was stored',
  conflicting_duplicate:
    'a sample with the same series and time is already stored (or came earlier in the batch) with a different value; the stored value was kept',
} as const;

/** A dead-letter reason code of the sample store. */
export type StoreDeadLetterReason = keyof typeof STORE_DEAD_LETTER_REASONS;

/** Which GPU: by cluster + host + index, or by UUID. */
export type GpuSelector = { clusterId: string; hostname: string; gpuId: string } | { uuid: string };

/** Resolution a query is served at: raw samples, or 1-minute / 1-hour rollups. */
export type Resolution = 'raw' | '1m' | '1h';

/** Resolution a caller may ask for; `auto` picks one from the time range (see {@link chooseResolution}). */
export type ResolutionRequest = Resolution | 'auto';

/** Every value of {@link ResolutionRequest}, for validation. */
export const RESOLUTION_REQUESTS: readonly ResolutionRequest[] = ['raw', '1m', '1h', 'auto'];

/** `auto` serves ranges up to this span (ms) from raw samples: 6 hours. */
export const AUTO_RAW_MAX_SPAN_MS = 6 * 60 * 60 * 1000;
/** `auto` serves ranges up to this span (ms) from 1-minute rollups, longer ones from 1-hour: 7 days. */
export const AUTO_1M_MAX_SPAN_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * The resolution that serves `query`. Absent or `raw` -> raw; `1m`/`1h` as asked; `auto` by the
 * span of the range, `(endMs ?? nowMs) - startMs`: up to 6 h raw, up to 7 days 1m, beyond 1h.
 * Without `startMs` the range has no span to judge and `auto` serves raw samples (the newest
 * `limit` samples is what such a query asks for).
 */
export function chooseResolution(
  query: Pick<SampleQuery, 'resolution' | 'startMs' | 'endMs'>,
  nowMs: number = Date.now(),
): Resolution {
  const asked = query.resolution ?? 'raw';
  if (asked !== 'auto') return asked;
  if (query.startMs === undefined) return 'raw';
  const span = (query.endMs ?? nowMs) - query.startMs;
  if (span <= AUTO_RAW_MAX_SPAN_MS) return 'raw';
  if (span <= AUTO_1M_MAX_SPAN_MS) return '1m';
  return '1h';
}

export interface SampleQuery {
  gpu: GpuSelector;
  /** Inclusive bounds in ms since epoch. */
  startMs?: number;
  endMs?: number;
  /** Only these DCGM field names. */
  metrics?: string[];
  /** Most samples to return (default 1000). */
  limit?: number;
  order?: 'asc' | 'desc';
  /**
   * Raw samples or rollups (default `raw`). At `1m`/`1h`, `startMs` is rounded down to its
   * bucket, so the bucket holding `startMs` is included; `endMs` bounds bucket starts.
   */
  resolution?: ResolutionRequest;
  /**
   * MIG: only the series of this GPU instance (dcgm-exporter's `GPU_I_ID` label). Absent: only the
   * GPU's own series, never its instances'.
   */
  migInstance?: string;
}

/** Summary of the samples of one rollup bucket. */
export interface SampleAggregate {
  min: number;
  max: number;
  /** sum / count; also the sample's `value`. */
  avg: number;
  count: number;
  /** Value of the newest sample in the bucket. */
  last: number;
}

/** A stored sample as returned by queries; rollup buckets carry `aggregate`. */
export type StoredSample = Sample & { aggregate?: SampleAggregate };

/** Retention bounds of {@link SampleStore.applyRetention}. */
export interface RetentionPolicy {
  /** Keep raw samples this long (ms); 0 keeps them forever. */
  rawMs: number;
  /** Keep 1m and 1h rollups this long (ms); 0 keeps them forever. */
  rollupMs: number;
  /** The current time (default `Date.now()`). */
  nowMs?: number;
}

/** Bounds of {@link SampleStore.compact}. */
export interface CompactOptions {
  /** Hot window (ms): samples stay as written until their 6-hour window ended this long ago. */
  hotMs: number;
  /** The current time (default `Date.now()`). */
  nowMs?: number;
  /** Called after each window compacted (progress). */
  onWindow?: (window: { startMs: number; samples: number }) => void;
}

/** What one compaction pass did. */
export interface CompactResult {
  /** Windows rebuilt. */
  windows: number;
  /** Samples held in the rebuilt windows. */
  samples: number;
  /** Storage units freed whole (the SQL stores' emptied day partitions), by name. */
  droppedPartitions: string[];
}

/** What one retention pass did. */
export interface RetentionResult {
  /** Whole partitions (or TimescaleDB chunks) dropped, by name. */
  dropped: string[];
  /** Rows deleted from the default partitions (rows that missed their day partition). */
  deletedRows: number;
}

/** A stored dead letter with its storage id and receive time. */
export interface StoredDeadLetter extends DeadLetter {
  id: number;
  receivedAtMs: number;
}

/** One GPU known to the store (derived from its series). */
export interface StoredGpu {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  device: string;
  modelName: string;
}

/**
 * Which series {@link SampleStore.selectSeries} reads: exact values of the indexed series columns
 * (pushed into SQL; every field given must match), then `accept` on each remaining series row.
 */
export interface SeriesFilter {
  /** Only series of one of these metrics (DCGM field names); an empty array matches none. */
  metrics?: readonly string[];
  /** Only metrics that start with this text. */
  metricPrefix?: string;
  clusterId?: string;
  hostname?: string;
  gpuId?: string;
  uuid?: string;
  device?: string;
  modelName?: string;
  container?: string;
  pod?: string;
  namespace?: string;
  /**
   * Only series whose label has this value (a label is one of a series' extra labels, e.g.
   * `GPU_I_ID`); `''` matches a series without the label as well.
   */
  labels?: Readonly<Record<string, string>>;
}

/** Whether a series' extra `labels` hold every value `wanted` asks for (see {@link SeriesFilter.labels}). */
export function labelsMatch(
  labels: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>> | undefined,
): boolean {
  if (wanted === undefined) return true;
  for (const [name, value] of Object.entries(wanted)) {
    if ((Object.hasOwn(labels, name) ? labels[name] : '') !== value) return false;
  }
  return true;
}

/** A stored series: its identity and storage id. */
export interface StoredSeries extends SeriesKey {
  id: number;
}

/** What {@link SampleStore.selectSeries} reads. */
export interface SeriesSelect {
  filter: SeriesFilter;
  /** Keeps a series or not, applied in memory after `filter` (e.g. label regexes). */
  accept?: (series: StoredSeries) => boolean;
  /** Inclusive bounds in ms since epoch. */
  startMs: number;
  endMs: number;
  /** Only the newest sample of each series within the window (federation). */
  latestOnly?: boolean;
  /** Most samples returned in all; more rejects with READ_BUDGET_EXCEEDED. Default: no bound. */
  maxSamples?: number;
}

/** One series chosen by {@link SampleStore.selectSeries}, with its samples in the window, oldest first. */
export interface SelectedSeries {
  series: StoredSeries;
  timestamps: number[];
  values: number[];
}

/** Samples in all of `selected` (what a `maxSamples` bound counts). */
export function countSelectedSamples(selected: readonly SelectedSeries[]): number {
  return selected.reduce((n, s) => n + s.timestamps.length, 0);
}

/** What {@link SampleStore.summarizeSeries} reads. */
export interface SeriesSummarySelect extends SeriesSummaryWindow {
  filter: SeriesFilter;
  /** Further windows, disjoint from each other and from the first: the totals cover them all. */
  more?: readonly SeriesSummaryWindow[];
}

/** One window of {@link SeriesSummarySelect}. */
export interface SeriesSummaryWindow {
  /**
   * Window [startMs, endMs): the buckets of `resolution` that start in it (align it on buckets),
   * or with `raw` the samples in it.
   */
  startMs: number;
  endMs: number;
  resolution: 'raw' | '1m' | '1h';
}

/** One series' rollup totals over a window: what its samples in those buckets add up to. */
export interface SeriesSummary {
  series: StoredSeries;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** What {@link SampleStore.sampleSpacing} reads. */
export interface SpacingSelect {
  filter: SeriesFilter;
  /** Window [startMs, endMs) of raw samples. */
  startMs: number;
  endMs: number;
  /** Label whose value tells the instances of one GPU apart (MIG: `GPU_I_ID`); '' when absent. */
  instanceLabel: string;
  /** GPUs (and instances) to leave out, e.g. those an earlier, shorter window settled. */
  exclude?: readonly Pick<GpuSpacing, 'clusterId' | 'hostname' | 'gpuId' | 'instance'>[];
}

/** The distinct sample times of one GPU (or instance) in a window, and their median spacing. */
export interface GpuSpacing {
  clusterId: string;
  hostname: string;
  gpuId: string;
  /** Value of the instance label, '' for a whole GPU. */
  instance: string;
  /** Distinct timestamps over all the GPU's matching series. */
  timestamps: number;
  /** Median gap between consecutive distinct timestamps, ms (mean of the middle two for an even count); null with fewer than two. */
  medianMs: number | null;
}

export interface SampleStore {
  /** Create or upgrade the schema; safe to call from several processes at once. */
  migrate(): Promise<void>;
  /** Write one batch atomically and idempotently (see the module contract). */
  writeBatch(batch: Batch): Promise<WriteResult>;
  /** Samples of one GPU, filtered and ordered by time. */
  querySamples(query: SampleQuery): Promise<StoredSample[]>;
  /** Every GPU with at least one stored series, optionally in one cluster. */
  listGpus(clusterId?: string): Promise<StoredGpu[]>;
  /** The newest sample of every series, optionally in one cluster (traditional mode's hierarchy). */
  latestSamples(clusterId?: string): Promise<StoredSample[]>;
  /**
   * Series matching `select.filter` and `select.accept` that have at least one sample in
   * [startMs, endMs], each with its samples there ascending (or only its newest with `latestOnly`),
   * ordered by series id. Raw samples only. `signal` stops the read between its statements.
   */
  selectSeries(select: SeriesSelect, signal?: AbortSignal): Promise<SelectedSeries[]>;
  /**
   * Per series matching `select.filter`, the totals (count, sum, min, max) of its `resolution`
   * rollup buckets starting in [startMs, endMs) (`raw`: of its samples in that window), and in
   * the `more` windows, in one aggregate query; series without such a bucket are left out. Optional: stores without rollups
   * do not implement it.
   */
  summarizeSeries?(select: SeriesSummarySelect, signal?: AbortSignal): Promise<SeriesSummary[]>;
  /**
   * Per GPU (cluster, host, index, instance label) with samples of a series matching
   * `select.filter` in [startMs, endMs): how many distinct timestamps, and the median spacing of
   * them, computed in one query. Optional: the caller then reads the raw samples itself.
   */
  sampleSpacing?(select: SpacingSelect, signal?: AbortSignal): Promise<GpuSpacing[]>;
  /** Dead letters, newest first. */
  listDeadLetters(options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]>;
  /** Total number of stored samples (tests and stats). */
  countSamples(): Promise<number>;
  /**
   * Enforce retention by dropping whole day partitions whose every instant is older than the
   * bound (see docs/storage.md for how the bound is measured), and create the partitions of the
   * next days ahead of time. Safe to run from several processes at once; the maintenance leader
   * runs it. Optional: stores without time partitions do not implement it.
   */
  applyRetention?(policy: RetentionPolicy): Promise<RetentionResult>;
  /**
   * Compact the raw samples older than the hot window into a denser layout (the SQL stores:
   * compressed per-series chunks of 6-hour windows, src/storage/chunks.ts). Every read and every
   * write answers exactly as before: a sample keeps its value, its natural key still refuses a
   * replay or a conflicting value. Safe beside writers and other passes. Optional.
   */
  compact?(options: CompactOptions): Promise<CompactResult>;
  /** Cheap liveness check of the backend; throws when it cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
