/**
 * Deterministic DCGM dataset for the PromQL differential test and bench: dcgm-exporter metric names
 * and labels (as test/fixtures/dcgm-exporter/sample.prom has them, plus `cluster`), gauges and counters with
 * fractional values, one counter reset and one GPU with a gap longer than the 5-minute lookback.
 * Rendered twice from the same numbers: OpenMetrics text with timestamps in seconds (for
 * `promtool tsdb create-blocks-from openmetrics`) and Prometheus text 0.0.4 with timestamps in
 * milliseconds (what the project's file source reads). Every series is written whole, oldest sample
 * first, grouped by metric family, with `# TYPE` lines; OpenMetrics ends with `# EOF`.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** Kind of a generated metric (dcgm-exporter's `# TYPE`). */
export type PromqlMetricKind = 'gauge' | 'counter';

/** One generated metric: its dcgm-exporter name, kind, and how its values move. */
export interface PromqlMetricSpec {
  name: string;
  kind: PromqlMetricKind;
  /** Decimals values are rounded to (values are written exactly as JavaScript prints them). */
  decimals: number;
}

/** Gauges of the test dataset (DCGM_FI_DEV_XID_ERRORS is a gauge in dcgm-exporter: the last XID). */
export const PROMQL_GAUGES: readonly PromqlMetricSpec[] = [
  { name: 'DCGM_FI_DEV_GPU_UTIL', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_GPU_TEMP', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_POWER_USAGE', kind: 'gauge', decimals: 3 },
  { name: 'DCGM_FI_DEV_FB_USED', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_FB_FREE', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_SM_CLOCK', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_MEM_CLOCK', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_DEV_XID_ERRORS', kind: 'gauge', decimals: 0 },
  { name: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', kind: 'gauge', decimals: 6 },
  { name: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', kind: 'gauge', decimals: 6 },
  { name: 'DCGM_FI_PROF_PCIE_TX_BYTES', kind: 'gauge', decimals: 1 },
];

/** Counters of the test dataset. */
export const PROMQL_COUNTERS: readonly PromqlMetricSpec[] = [
  { name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', kind: 'counter', decimals: 3 },
  { name: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', kind: 'counter', decimals: 0 },
  { name: 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', kind: 'counter', decimals: 2 },
];

/** One GPU of the dataset, with the labels dcgm-exporter puts on its series. */
export interface PromqlGpu {
  hostname: string;
  gpu: string;
  uuid: string;
  device: string;
  modelName: string;
  driver: string;
}

/** One generated series: its full label set (`__name__` included) and samples, oldest first. */
export interface PromqlSeries {
  metric: string;
  kind: PromqlMetricKind;
  labels: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch, whole seconds. */
  timestamps: number[];
  values: number[];
}

/** Options of {@link generatePromqlDataset}. */
export interface PromqlDatasetOptions {
  /** First sample time (ms, rounded down to a whole second). */
  startMs: number;
  /** Length of the dataset (default 2.5 h); the last sample is at start + duration - interval. */
  durationMs?: number;
  /** Scrape interval (default 30 s). */
  intervalMs?: number;
  /** GPUs per host, one entry per host (default [2, 3, 4]). */
  gpusPerHost?: readonly number[];
  /** Metrics to generate (default gauges + counters above). */
  metrics?: readonly PromqlMetricSpec[];
  /** PRNG seed (default 13). */
  seed?: number;
  /** Leave out every sample of one GPU for 10 minutes (default true). */
  gap?: boolean;
  /** Reset one GPU's energy counter to near zero once (default true). */
  reset?: boolean;
  /**
   * Value of the `cluster` label on every series (default `promql`): the project shows each series
   * with its CLUSTER_ID as `cluster`, so the data carries the same label for Prometheus.
   */
  cluster?: string;
}

/** A generated dataset and where its special cases are. */
export interface PromqlDataset {
  startMs: number;
  /** The `cluster` label of every series. */
  cluster: string;
  /** Time of the last sample. */
  endMs: number;
  intervalMs: number;
  gpus: PromqlGpu[];
  series: PromqlSeries[];
  /** Total number of samples (what both stores must hold). */
  sampleCount: number;
  /** The GPU without samples in [fromMs, toMs). */
  gap?: { hostname: string; gpu: string; fromMs: number; toMs: number };
  /** The counter series that resets at `atMs`. */
  reset?: { hostname: string; gpu: string; metric: string; atMs: number };
}

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

function round(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

/** The i-th value of a gauge: a bounded random walk shaped like the DCGM field. */
function gaugeValue(name: string, state: { x: number }, rand: () => number, busy: boolean): number {
  const step = (lo: number, hi: number, jitter: number): number => {
    state.x = Math.min(hi, Math.max(lo, state.x + (rand() - 0.5) * jitter));
    return state.x;
  };
  switch (name) {
    case 'DCGM_FI_DEV_GPU_UTIL':
      return busy ? step(40, 100, 20) : step(0, 10, 4);
    case 'DCGM_FI_DEV_GPU_TEMP':
      return step(30, 85, 3);
    case 'DCGM_FI_DEV_POWER_USAGE':
      return busy ? step(250, 700, 60) : step(60, 120, 10);
    case 'DCGM_FI_DEV_FB_USED':
      return step(0, 81_000, 4_000);
    case 'DCGM_FI_DEV_FB_FREE':
      return 81_559 - step(0, 81_000, 4_000);
    case 'DCGM_FI_DEV_SM_CLOCK':
      return busy ? (rand() < 0.9 ? 1980 : 1965) : 345;
    case 'DCGM_FI_DEV_MEM_CLOCK':
      return 2619;
    case 'DCGM_FI_DEV_XID_ERRORS':
      return rand() < 0.01 ? 79 : 0;
    case 'DCGM_FI_PROF_GR_ENGINE_ACTIVE':
    case 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE':
      return busy ? step(0.2, 1, 0.2) : step(0, 0.05, 0.02);
    default:
      return step(0, 5e9, 4e8);
  }
}

/** Per-interval increase of a counter. */
function counterIncrease(name: string, rand: () => number, intervalS: number): number {
  switch (name) {
    case 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION':
      return (100 + rand() * 600) * intervalS * 1000; // mJ
    case 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER':
      return rand() < 0.1 ? Math.floor(rand() * 4) + 1 : 0;
    default:
      return rand() * 1e6 * intervalS;
  }
}

/** Generate the dataset: same options, same numbers. */
export function generatePromqlDataset(options: PromqlDatasetOptions): PromqlDataset {
  const startMs = Math.floor(options.startMs / 1000) * 1000;
  const intervalMs = options.intervalMs ?? 30_000;
  const durationMs = options.durationMs ?? 150 * 60_000;
  const gpusPerHost = options.gpusPerHost ?? [2, 3, 4];
  const metrics = options.metrics ?? [...PROMQL_GAUGES, ...PROMQL_COUNTERS];
  const rand = prng(options.seed ?? 13);
  const cluster = options.cluster ?? 'promql';
  const steps = Math.floor(durationMs / intervalMs);
  const endMs = startMs + (steps - 1) * intervalMs;

  const gpus: PromqlGpu[] = [];
  gpusPerHost.forEach((count, h) => {
    const hostname = `sim-dgx1-hgpu-${String(h + 1).padStart(3, '0')}`;
    for (let g = 0; g < count; g++) {
      const uuid = `GPU-${hex(rand, 8)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 12)}`;
      gpus.push({
        hostname,
        gpu: String(g),
        uuid,
        device: `nvidia${g}`,
        modelName: h % 2 === 0 ? 'NVIDIA H100 80GB HBM3' : 'NVIDIA A100-SXM4-80GB',
        driver: '535.129.03',
      });
    }
  });

  // The gap: the second GPU of the last host; the reset: the first GPU's energy counter.
  const gapGpu = options.gap === false ? undefined : gpus[gpus.length - 2];
  const gap =
    gapGpu === undefined
      ? undefined
      : {
          hostname: gapGpu.hostname,
          gpu: gapGpu.gpu,
          fromMs: startMs + Math.floor(steps * 0.4) * intervalMs,
          toMs: startMs + Math.floor(steps * 0.4) * intervalMs + 10 * 60_000,
        };
  const resetMetric = metrics.find((m) => m.name === 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION');
  const reset =
    options.reset === false || resetMetric === undefined
      ? undefined
      : {
          hostname: gpus[0]!.hostname,
          gpu: gpus[0]!.gpu,
          metric: resetMetric.name,
          atMs: startMs + Math.floor(steps * 0.6) * intervalMs,
        };

  const series: PromqlSeries[] = [];
  let sampleCount = 0;
  for (const metric of metrics) {
    for (const [index, gpu] of gpus.entries()) {
      const labels = {
        __name__: metric.name,
        gpu: gpu.gpu,
        UUID: gpu.uuid,
        device: gpu.device,
        modelName: gpu.modelName,
        Hostname: gpu.hostname,
        DCGM_FI_DRIVER_VERSION: gpu.driver,
        cluster,
      };
      const timestamps: number[] = [];
      const values: number[] = [];
      const state = { x: rand() * 1000 };
      let total = metric.kind === 'counter' ? round(rand() * 1e9, metric.decimals) : 0;
      const isGap = gap !== undefined && gap.hostname === gpu.hostname && gap.gpu === gpu.gpu;
      const isReset =
        reset !== undefined &&
        reset.hostname === gpu.hostname &&
        reset.gpu === gpu.gpu &&
        reset.metric === metric.name;
      for (let i = 0; i < steps; i++) {
        const t = startMs + i * intervalMs;
        // Half the GPUs are busy in the second half, so aggregations change over time.
        const busy = (index + (i * 2 >= steps ? 1 : 0)) % 2 === 0;
        let v: number;
        if (metric.kind === 'counter') {
          total = round(total + counterIncrease(metric.name, rand, intervalMs / 1000), metric.decimals);
          if (isReset && t === reset.atMs) total = round(rand() * 5000, metric.decimals);
          v = total;
        } else {
          v = round(gaugeValue(metric.name, state, rand, busy), metric.decimals);
        }
        if (isGap && t >= gap.fromMs && t < gap.toMs) continue;
        timestamps.push(t);
        values.push(v);
      }
      sampleCount += timestamps.length;
      series.push({ metric: metric.name, kind: metric.kind, labels, timestamps, values });
    }
  }
  return { startMs, cluster, endMs, intervalMs, gpus, series, sampleCount, gap, reset };
}

/** Text format of {@link renderDataset}. */
export type PromqlTextFormat = 'openmetrics' | 'text';

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function seriesText(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return `${labels.__name__}{${pairs.join(',')}}`;
}

/**
 * The dataset as text, in chunks of whole lines: OpenMetrics (timestamps in seconds, `# EOF`) or
 * Prometheus text 0.0.4 (timestamps in milliseconds).
 */
export function* renderDataset(dataset: PromqlDataset, format: PromqlTextFormat): Generator<string> {
  const open = format === 'openmetrics';
  let lastMetric = '';
  for (const s of dataset.series) {
    let out = '';
    if (s.metric !== lastMetric) {
      out += `# TYPE ${s.metric} ${s.kind}\n`;
      lastMetric = s.metric;
    }
    const head = seriesText(s.labels);
    for (let i = 0; i < s.timestamps.length; i++) {
      const t = s.timestamps[i]!;
      out += `${head} ${String(s.values[i])} ${open ? t / 1000 : t}\n`;
    }
    yield out;
  }
  if (open) yield '# EOF\n';
}

/** Write {@link renderDataset} to `path`. */
export async function writeDataset(
  dataset: PromqlDataset,
  format: PromqlTextFormat,
  path: string,
): Promise<void> {
  const out = createWriteStream(path);
  for (const chunk of renderDataset(dataset, format)) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}
