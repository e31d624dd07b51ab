/**
 * Domain types shared by every layer: one DCGM sample, the series it belongs to, and the
 * live hierarchy records (cluster, host, GPU) kept in the coordination store.
 */

/** Workload attribution and identity of one GPU time series (GPU + metric + label set). */
export interface SeriesKey {
  /** Cluster the sample was collected in (CLUSTER_ID of the collector). */
  clusterId: string;
  /** Host name (DCGM `Hostname`). */
  hostname: string;
  /** GPU index within its host (DCGM `gpu_id`), as a string: `"0"`..`"7"`. */
  gpuId: string;
  /** GPU UUID (DCGM `uuid`), the globally unique GPU identity. */
  uuid: string;
  /** Device name (DCGM `device`, e.g. `nvidia0`). */
  device: string;
  /** GPU model (DCGM `modelName`). */
  modelName: string;
  /** DCGM field name, e.g. `DCGM_FI_DEV_GPU_UTIL`. Unknown fields are kept as they come. */
  metric: string;
  /** Workload attribution; empty string when absent. */
  container: string;
  pod: string;
  namespace: string;
  /** Every label from `labels_raw`, as parsed. */
  labels: Record<string, string>;
}

/** One sample of one metric of one GPU. */
export interface Sample extends SeriesKey {
  /** Sample time in milliseconds since the Unix epoch (UTC). */
  timestampMs: number;
  /** Finite value (NaN and Infinity are rejected at ingest). */
  value: number;
}

/** A row the pipeline refused, with where it came from and why. */
export interface DeadLetter {
  /** Source name (file path, `stdin`, ...). */
  source: string;
  /** 1-based physical line number in the source where the record starts. */
  line: number;
  /** The raw record, truncated to a bounded length. */
  raw: string;
  /** Machine-readable reason code, e.g. `column_count`, `non_finite_value`. */
  reason: string;
  /** Human detail for the reason. */
  detail: string;
}

/** One unit of work through the queue: samples plus the bad rows seen in the same span of input. */
export interface Batch {
  /** Deterministic id (hash of the contents) so a replayed batch is recognised by the ledger. */
  id: string;
  /** Source the rows came from. */
  source: string;
  samples: Sample[];
  deadLetters: DeadLetter[];
  /**
   * Set on the last batch of one complete scrape of a live target: every GPU (and MIG instance) the
   * target exposed in that scrape. The hierarchy marks the target's other GPUs inactive at once.
   * Absent for files, stdin and remote write.
   */
  presence?: ScrapePresence;
}

/** One GPU (or MIG instance, with `migInstance`) a scrape exposed. */
export interface PresentGpu {
  hostname: string;
  gpuId: string;
  uuid: string;
  /** GPU instance id (dcgm-exporter's `GPU_I_ID`) when the series belong to a MIG instance. */
  migInstance?: string;
}

/** Which GPUs one complete scrape of one target exposed (see {@link Batch.presence}). */
export interface ScrapePresence {
  /** The target's URL, as scraped. */
  target: string;
  /** Cluster of the streamer that scraped it. */
  clusterId: string;
  /** Scrape start, ms since the epoch. */
  scrapeMs: number;
  gpus: PresentGpu[];
}

/** Latest observed value of one metric on one GPU. */
export interface LatestValue {
  value: number;
  timestampMs: number;
}

/** GPU record in the live hierarchy at /telemetry/clusters/{c}/hosts/{h}/gpus/{g}. */
export interface GpuRecord {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  device: string;
  modelName: string;
  /** Latest value of each metric, by DCGM field name. */
  metrics: Record<string, LatestValue>;
  /** Newest sample timestamp seen (ms). */
  lastSampleMs: number;
  /** Wall-clock time the collector last wrote this GPU (ms); drives active/inactive. */
  lastSeenMs: number;
}

/** Host record in the live hierarchy at /telemetry/clusters/{c}/hosts/{h}. */
export interface HostRecord {
  clusterId: string;
  hostname: string;
  lastSeenMs: number;
}

/** Cluster record in the live hierarchy at /telemetry/clusters/{c}. */
export interface ClusterRecord {
  clusterId: string;
  name: string;
  region: string;
  lastSeenMs: number;
}
