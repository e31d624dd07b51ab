/**
 * Synthetic DCGM CSV at any scale, shaped like the real export in sample/: same header, same quoting,
 * same `labels_raw` layout, values drawn from per-GPU workload states (idle / memory allocated /
 * busy) calibrated on the sample, with FB_USED + FB_FREE constant per model. Deterministic: the same
 * options and seed give the same bytes (mulberry32, never Math.random).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { NexusError } from '../errors.js';
import { faultFields, FaultInjector, type FaultSpec } from './faults.js';
import { mulberry32, type Prng } from './prng.js';
import { DEFAULT_MODEL, metricNames, profileFor, SAMPLE_METRICS, type ModelProfile } from './profiles.js';
import { WorkloadScheduler, type HeldState } from './workloads.js';

/** Options of the generator. Every field is optional; see {@link GENERATOR_DEFAULTS}. */
export interface GeneratorOptions {
  /** Number of hosts. Default 4. */
  hosts?: number;
  /** GPUs per host (gpu_id 0..n-1, device nvidia0..). Default 8. */
  gpusPerHost?: number;
  /**
   * DCGM field names to emit, or how many: a count takes the sample's ten first, then other
   * dcgm-exporter defaults, then synthetic `DCGM_FI_CUSTOM_<n>` gauges. Default: the sample's ten.
   */
  metrics?: readonly string[] | number;
  /** Time between two scrapes of the same GPU, ms. Default 10,000. */
  intervalMs?: number;
  /**
   * Time span covered: one scrape of every GPU and metric per interval, floor(durationMs / intervalMs)
   * scrapes (at least one). `Infinity` generates forever. Default: one scrape.
   */
  durationMs?: number;
  /**
   * Stop after exactly this many data rows (may end mid-scrape); with `durationMs` too, whichever
   * ends first. `Infinity` = no row limit.
   */
  rows?: number;
  /** Time of the first scrape: Date, epoch ms or RFC 3339 text. Default 2025-07-18T20:42:34Z (the sample's). */
  start?: Date | number | string;
  /** PRNG seed; the same seed gives the same output. Default 1. */
  seed?: number;
  /** Host names are `<hostPrefix><NNN>` (001, 002, ...). Default `sim-dgx1-hgpu-`. */
  hostPrefix?: string;
  /** GPU model (`modelName`); sets FB total, power and clocks. Default `NVIDIA H100 80GB HBM3`. */
  model?: string;
  /** Override FB_USED + FB_FREE (MiB) of the model. */
  fbTotalMiB?: number;
  /** Fraction (0..1) of jobs that carry Kubernetes attribution (container, pod, namespace). Default 0, as in the sample. */
  workloadFraction?: number;
  /** `DCGM_FI_DRIVER_VERSION` label. Default `535.129.03`. */
  driverVersion?: string;
  /** Emit the header line first. Default true. */
  header?: boolean;
  /** Rows per yielded chunk. Default 1024. */
  chunkRows?: number;
  /** Faults to inject (see faults.ts); their fields join `metrics`. Default none. */
  faults?: readonly FaultSpec[];
}

/** Defaults applied by {@link resolveGeneratorOptions}. */
export const GENERATOR_DEFAULTS = {
  hosts: 4,
  gpusPerHost: 8,
  metrics: SAMPLE_METRICS as readonly string[],
  intervalMs: 10_000,
  start: Date.UTC(2025, 6, 18, 20, 42, 34),
  seed: 1,
  hostPrefix: 'sim-dgx1-hgpu-',
  model: DEFAULT_MODEL,
  workloadFraction: 0,
  driverVersion: '535.129.03',
  header: true,
  chunkRows: 1024,
} as const;

/** Options after defaults, with the planned size. */
export interface ResolvedGeneratorOptions {
  hosts: number;
  gpusPerHost: number;
  metrics: string[];
  intervalMs: number;
  /** Number of scrapes (Infinity when unbounded). */
  scrapes: number;
  /** Data rows that will be produced (Infinity when unbounded). */
  rows: number;
  startMs: number;
  seed: number;
  hostPrefix: string;
  profile: ModelProfile;
  workloadFraction: number;
  driverVersion: string;
  header: boolean;
  chunkRows: number;
  faults: FaultSpec[];
}

/** The CSV header line of a DCGM export (without line feed). */
export const DCGM_HEADER_LINE =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw';

function bad(message: string): never {
  throw new NexusError('BAD_REQUEST', `generator: ${message}`);
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) bad(`${name} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Apply defaults and check ranges.
 * @throws NexusError('BAD_REQUEST') naming the offending option
 */
export function resolveGeneratorOptions(options: GeneratorOptions = {}): ResolvedGeneratorOptions {
  const d = GENERATOR_DEFAULTS;
  const hosts = positiveInt('hosts', options.hosts ?? d.hosts);
  const gpusPerHost = positiveInt('gpusPerHost', options.gpusPerHost ?? d.gpusPerHost);
  const m = options.metrics ?? d.metrics;
  const faults = [...(options.faults ?? [])];
  const metrics = typeof m === 'number' ? metricNames(positiveInt('metrics', m)) : [...m];
  for (const field of faultFields(faults)) if (!metrics.includes(field)) metrics.push(field);
  if (metrics.length === 0) bad('metrics must not be empty');
  const intervalMs = options.intervalMs ?? d.intervalMs;
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) bad(`intervalMs must be > 0, got ${intervalMs}`);
  let scrapes = 1;
  if (options.durationMs !== undefined) {
    if (!(options.durationMs >= 0)) bad(`durationMs must be >= 0, got ${options.durationMs}`);
    scrapes = Math.max(1, Math.floor(options.durationMs / intervalMs));
  }
  const perScrape = hosts * gpusPerHost * metrics.length;
  let rows = scrapes * perScrape;
  if (options.rows !== undefined) {
    const r = options.rows;
    if (!(r >= 0) || (Number.isFinite(r) && !Number.isInteger(r)))
      bad(`rows must be a non-negative integer, got ${r}`);
    rows = options.durationMs === undefined ? r : Math.min(r, rows);
    scrapes = Math.ceil(rows / perScrape);
  }
  const startRaw = options.start ?? d.start;
  const startMs =
    startRaw instanceof Date
      ? startRaw.getTime()
      : typeof startRaw === 'number'
        ? startRaw
        : Date.parse(startRaw);
  if (!Number.isFinite(startMs)) bad(`start is not a valid time: ${String(startRaw)}`);
  const workloadFraction = options.workloadFraction ?? d.workloadFraction;
  if (!(workloadFraction >= 0 && workloadFraction <= 1)) bad('workloadFraction must be within 0..1');
  return {
    hosts,
    gpusPerHost,
    metrics,
    intervalMs,
    scrapes,
    rows,
    startMs,
    seed: (options.seed ?? d.seed) >>> 0,
    hostPrefix: options.hostPrefix ?? d.hostPrefix,
    profile: profileFor(options.model ?? d.model, options.fbTotalMiB),
    workloadFraction,
    driverVersion: options.driverVersion ?? d.driverVersion,
    header: options.header ?? d.header,
    chunkRows: positiveInt('chunkRows', options.chunkRows ?? d.chunkRows),
    faults,
  };
}

/** Workload state of a GPU. */
const IDLE = 0;
const ALLOCATED = 1;
const BUSY = 2;

/** Mean durations (ms) of the state machine; stationary mix ~43% idle, ~9% allocated, ~48% busy. */
const MEAN_IDLE_MS = 30 * 60_000;
const MEAN_JOB_MS = 40 * 60_000;
const MEAN_BUSY_STINT_MS = 10 * 60_000;
const MEAN_PAUSE_STINT_MS = 2 * 60_000;

interface Gpu {
  index: number;
  hostname: string;
  uuid: string;
  device: string;
  state: number;
  /** Job parameters, drawn when a job starts. */
  intensity: number;
  memRatio: number;
  powerScale: number;
  tensorRatio: number;
  fbJob: number;
  job: { container: string; pod: string; namespace: string; labels?: Record<string, string> } | null;
  /** Per-GPU cooling offset, C. */
  coolOffset: number;
  temp: number;
  energyMJ: number;
  pcieReplays: number;
  nvlinkBytes: number;
  custom: number[];
  /** CSV text around the metric name and value, rebuilt when the job (attribution) changes. */
  idPart: string;
  labelsA: string;
  labelsB: string;
}

/** Values of one GPU at one scrape. */
interface Snapshot {
  util: number;
  memCopy: number;
  power: number;
  temp: number;
  fbUsed: number;
  smClock: number;
  xid: number;
  prof: number;
  pcieTx: number;
  pcieRx: number;
}

const csv = (s: string): string => s.replaceAll('"', '""');
const prom = (s: string): string => s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
/** A Prometheus label pair, CSV-escaped for use inside the quoted labels_raw field. */
const label = (k: string, v: string): string => `${k}=""${csv(prom(v))}""`;

function hexUuid(rng: Prng): string {
  const hex = (n: number): string => {
    let s = '';
    for (let k = 0; k < n; k++) s += Math.floor(rng.next() * 16).toString(16);
    return s;
  };
  return `GPU-${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}

function pChange(intervalMs: number, meanMs: number): number {
  return 1 - Math.exp(-intervalMs / meanMs);
}

const NAMESPACES = ['ml-training', 'research', 'inference', 'batch'];
const CONTAINERS = ['trainer', 'pytorch', 'worker', 'triton'];
const XIDS = [13, 31, 43, 48, 63, 79, 94];

/** Stateful model of the fleet; advances one scrape at a time. */
class Fleet {
  readonly gpus: Gpu[] = [];
  private readonly rng: Prng;
  private jobCounter = 0;
  /** With `workloadFraction` > 0, planned jobs (workloads.ts) decide who holds each GPU. */
  private readonly workloads: WorkloadScheduler | undefined;

  constructor(private readonly o: ResolvedGeneratorOptions) {
    this.rng = mulberry32(o.seed);
    this.workloads = o.workloadFraction > 0 ? new WorkloadScheduler(o) : undefined;
    const seen = new Set<string>();
    for (let h = 0; h < o.hosts; h++) {
      const hostname = `${o.hostPrefix}${String(h + 1).padStart(3, '0')}`;
      for (let g = 0; g < o.gpusPerHost; g++) {
        let uuid = hexUuid(this.rng);
        while (seen.has(uuid)) uuid = hexUuid(this.rng);
        seen.add(uuid);
        const r = this.rng.next();
        const state = r < 0.43 ? IDLE : r < 0.52 ? ALLOCATED : BUSY;
        const gpu: Gpu = {
          index: g,
          hostname,
          uuid,
          device: `nvidia${g}`,
          state,
          intensity: 0,
          memRatio: 0,
          powerScale: 0,
          tensorRatio: 0,
          fbJob: 0,
          job: null,
          coolOffset: this.rng.range(0, 6),
          temp: 0,
          energyMJ: Math.floor(this.rng.range(1e9, 9e10)),
          pcieReplays: this.rng.chance(0.05) ? this.rng.int(1, 20) : 0,
          nvlinkBytes: Math.floor(this.rng.range(0, 1e12)),
          custom: [],
          idPart: '',
          labelsA: '',
          labelsB: '',
        };
        if (state !== IDLE) this.startJob(gpu);
        this.render(gpu);
        gpu.temp = this.targetTemp(
          gpu,
          state === BUSY ? this.busyPower(gpu, 100 * gpu.intensity) : this.o.profile.idlePowerW,
        );
        this.gpus.push(gpu);
      }
    }
  }

  private startJob(gpu: Gpu): void {
    const r = this.rng;
    const p = this.o.profile;
    gpu.intensity = 1 - 0.7 * r.next() ** 3;
    gpu.memRatio = r.range(0, 0.85);
    gpu.powerScale = r.range(0.55, 1.05);
    gpu.tensorRatio = r.range(0.1, 0.7);
    gpu.fbJob = r.int(700, p.fbTotalMiB - 3590);
    this.jobCounter++;
    gpu.job = r.chance(this.o.workloadFraction)
      ? {
          container: CONTAINERS[r.int(0, CONTAINERS.length - 1)]!,
          pod: `job-${this.o.seed.toString(36)}-${this.jobCounter.toString(36)}-worker-${r.int(0, 7)}`,
          namespace: NAMESPACES[r.int(0, NAMESPACES.length - 1)]!,
        }
      : null;
  }

  /** Precompute the CSV text of a GPU's rows around metric name and value. */
  private render(gpu: Gpu): void {
    const o = this.o;
    const job = gpu.job;
    const container = job?.container ?? '';
    const pod = job?.pod ?? '';
    const namespace = job?.namespace ?? '';
    gpu.idPart = `","${gpu.index}","${gpu.device}","${csv(gpu.uuid)}","${csv(o.profile.name)}","${csv(gpu.hostname)}","${csv(container)}","${csv(pod)}","${csv(namespace)}","`;
    gpu.labelsA = `${label('DCGM_FI_DRIVER_VERSION', o.driverVersion)},${label('Hostname', gpu.hostname)},${label('UUID', gpu.uuid)},__name__=""`;
    const tail = [
      job ? label('container', container) : '',
      label('device', gpu.device),
      label('gpu', String(gpu.index)),
      label('instance', `${gpu.hostname}:9400`),
      label('job', 'dgx_dcgm_exporter'),
      label('modelName', o.profile.name),
      job ? label('namespace', namespace) : '',
      job ? label('pod', pod) : '',
      ...Object.entries(job?.labels ?? {}).map(([k, v]) => label(k, v)),
    ].filter((s) => s !== '');
    gpu.labelsB = `"",${tail.join(',')}"\n`;
  }

  private busyPower(gpu: Gpu, util: number): number {
    const p = this.o.profile;
    const base = p.idlePowerW * 1.5;
    return Math.min(p.maxPowerW - 8, base + (p.maxPowerW - base) * (util / 100) * gpu.powerScale);
  }

  private targetTemp(gpu: Gpu, power: number): number {
    const p = this.o.profile;
    return 26 + gpu.coolOffset + ((power - p.idlePowerW) * 48) / (p.maxPowerW - p.idlePowerW);
  }

  /** Advance every GPU by one interval and return their values. */
  step(first: boolean): Snapshot[] {
    const r = this.rng;
    const o = this.o;
    const p = o.profile;
    const dt = o.intervalMs;
    const pStart = pChange(dt, MEAN_IDLE_MS);
    const pEnd = pChange(dt, MEAN_JOB_MS);
    const pPause = pChange(dt, MEAN_BUSY_STINT_MS);
    const pResume = pChange(dt, MEAN_PAUSE_STINT_MS);
    const alpha = 1 - Math.exp(-dt / 60_000);
    const out: Snapshot[] = [];
    this.workloads?.step();
    for (const [slot, gpu] of this.gpus.entries()) {
      const held = this.workloads?.held(slot);
      if (this.workloads) this.follow(gpu, held);
      else if (!first) {
        const before = gpu.job;
        if (gpu.state === IDLE) {
          if (r.chance(pStart)) {
            gpu.state = BUSY;
            this.startJob(gpu);
          }
        } else if (r.chance(pEnd)) {
          gpu.state = IDLE;
          gpu.job = null;
        } else if (gpu.state === BUSY) {
          if (r.chance(pPause)) gpu.state = ALLOCATED;
        } else if (r.chance(pResume)) {
          gpu.state = BUSY;
        }
        if (gpu.job !== before) this.render(gpu);
      }
      let util = 0;
      let memCopy = 0;
      let power: number;
      let fbUsed: number;
      let smClock: number;
      if (gpu.state === BUSY) {
        util = Math.max(1, Math.min(100, Math.round(100 * gpu.intensity + r.normal(0, 2.5))));
        memCopy = Math.max(0, Math.min(100, Math.round(util * gpu.memRatio + r.normal(0, 3))));
        power = this.busyPower(gpu, util) + r.normal(0, 12);
        fbUsed = gpu.fbJob + Math.round(r.normal(0, 30));
        smClock = r.chance(0.05) ? p.smClockMaxMHz - 15 : p.smClockMaxMHz;
      } else if (gpu.state === ALLOCATED) {
        memCopy = r.chance(0.05) ? r.int(1, 2) : 0;
        power = p.idlePowerW * 1.6 + r.normal(0, 10);
        fbUsed = gpu.fbJob;
        smClock = p.smClockMaxMHz;
      } else {
        power = r.normal(p.idlePowerW, 3.2);
        fbUsed = r.chance(0.08) ? 7 : 4;
        smClock = p.smClockIdleMHz;
      }
      power = Math.max(p.idlePowerW * 0.93, Math.min(p.maxPowerW - 8, power));
      fbUsed = Math.max(0, Math.min(p.fbTotalMiB, fbUsed));
      if (held) [util, power, fbUsed] = [held.phase.util, held.phase.powerW, held.job.fbUsedMiB];
      const target = this.targetTemp(gpu, power);
      gpu.temp = first ? target : gpu.temp + (target - gpu.temp) * alpha;
      gpu.energyMJ += Math.round(power * dt);
      if (r.chance(0.0005)) gpu.pcieReplays++;
      gpu.nvlinkBytes += gpu.state === BUSY ? Math.round(gpu.intensity * 5e7 * dt) : 0;
      const xid = r.chance(0.0002) ? XIDS[r.int(0, XIDS.length - 1)]! : 0;
      const prof = util / 100;
      const pcieTx = gpu.state === BUSY ? Math.round(r.range(1e8, 2e9) * gpu.intensity) : r.int(1e4, 2e5);
      const pcieRx = gpu.state === BUSY ? Math.round(r.range(1e8, 3e9) * gpu.intensity) : r.int(1e4, 2e5);
      out.push({
        util,
        memCopy,
        power: Math.round(power * 1000) / 1000,
        temp: Math.round(gpu.temp),
        fbUsed,
        smClock,
        xid,
        prof,
        pcieTx,
        pcieRx,
      });
    }
    return out;
  }

  /** Take the state and attribution of the planned job holding `gpu` (none: idle, unattributed). */
  private follow(gpu: Gpu, held: HeldState | undefined): void {
    gpu.state = held === undefined ? IDLE : held.phase.util > 0 ? BUSY : ALLOCATED;
    const j = held?.job;
    const job = j?.attributed
      ? { container: j.container, pod: j.pod, namespace: j.namespace, labels: j.labels }
      : null;
    if (job?.pod !== gpu.job?.pod) {
      gpu.job = job;
      this.render(gpu);
    }
  }

  /** Text of the value of `metric` for a GPU at a scrape. */
  value(metric: string, metricIndex: number, gpu: Gpu, s: Snapshot): string {
    const p = this.o.profile;
    switch (metric) {
      case 'DCGM_FI_DEV_GPU_UTIL':
        return String(s.util);
      case 'DCGM_FI_DEV_MEM_COPY_UTIL':
        return String(s.memCopy);
      case 'DCGM_FI_DEV_POWER_USAGE':
        return String(s.power);
      case 'DCGM_FI_DEV_GPU_TEMP':
        return String(s.temp);
      case 'DCGM_FI_DEV_MEMORY_TEMP':
        return String(s.temp + 6);
      case 'DCGM_FI_DEV_FB_USED':
        return String(s.fbUsed);
      case 'DCGM_FI_DEV_FB_FREE':
        return String(p.fbTotalMiB - s.fbUsed);
      case 'DCGM_FI_DEV_SM_CLOCK':
        return String(s.smClock);
      case 'DCGM_FI_DEV_MEM_CLOCK':
        return String(p.memClockMHz);
      case 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION':
        return String(gpu.energyMJ);
      case 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER':
        return String(gpu.pcieReplays);
      case 'DCGM_FI_DEV_XID_ERRORS':
        return String(s.xid);
      case 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL':
        return String(gpu.nvlinkBytes);
      case 'DCGM_FI_PROF_GR_ENGINE_ACTIVE':
        return s.prof.toFixed(6);
      case 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE':
        return (s.prof * gpu.tensorRatio).toFixed(6);
      case 'DCGM_FI_PROF_DRAM_ACTIVE':
        return (s.memCopy / 100).toFixed(6);
      case 'DCGM_FI_PROF_PCIE_TX_BYTES':
        return String(s.pcieTx);
      case 'DCGM_FI_PROF_PCIE_RX_BYTES':
        return String(s.pcieRx);
      case 'DCGM_FI_DEV_ENC_UTIL':
      case 'DCGM_FI_DEV_DEC_UTIL':
      case 'DCGM_FI_DEV_VGPU_LICENSE_STATUS':
      case 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS':
      case 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS':
      case 'DCGM_FI_DEV_ROW_REMAP_FAILURE':
      case 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL':
      case 'DCGM_FI_DEV_RETIRED_DBE':
      case 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL':
        return '0';
      case 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS':
        return gpu.state === IDLE ? '1' : '0';
      default: {
        // Unknown field: a bounded random walk per GPU.
        const prev = gpu.custom[metricIndex] ?? 50;
        const next = Math.max(0, Math.min(100, prev + this.rng.int(-3, 3)));
        gpu.custom[metricIndex] = next;
        return String(next);
      }
    }
  }
}

/** Format a scrape time like the sample (`2025-07-18T20:42:34Z`; milliseconds only when non-zero). */
export function formatTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return ms % 1000 === 0 ? `${iso.slice(0, 19)}Z` : iso;
}

/**
 * Generate DCGM CSV text as a stream of chunks (each a whole number of lines; the header, if any,
 * is in the first chunk). Rows are ordered by scrape, then metric, then host, then GPU, as in the
 * sample. Lazy: memory stays flat however many rows are asked for.
 */
export function* generateDcgmCsv(options: GeneratorOptions = {}): Generator<string> {
  const o = resolveGeneratorOptions(options);
  const fleet = new Fleet(o);
  const metricParts = o.metrics.map((m) => csv(m));
  const faults =
    o.faults.length === 0
      ? undefined
      : new FaultInjector(
          o.faults,
          fleet.gpus.map((g, i) => ({
            hostIndex: Math.floor(i / o.gpusPerHost) + 1,
            hostname: g.hostname,
            gpu: g.index,
          })),
        );
  let parts: string[] = o.header ? [`${DCGM_HEADER_LINE}\n`] : [];
  let inChunk = 0;
  let emitted = 0;
  for (let scrape = 0; scrape < o.scrapes && emitted < o.rows; scrape++) {
    const snaps = fleet.step(scrape === 0);
    faults?.beginScrape(scrape * o.intervalMs);
    const ts = `"${formatTimestamp(o.startMs + scrape * o.intervalMs)}","`;
    for (let mi = 0; mi < o.metrics.length && emitted < o.rows; mi++) {
      const metric = o.metrics[mi]!;
      const m = metricParts[mi]!;
      for (let gi = 0; gi < fleet.gpus.length && emitted < o.rows; gi++) {
        const gpu = fleet.gpus[gi]!;
        const drawn = fleet.value(metric, mi, gpu, snaps[gi]!);
        emitted++;
        if (faults?.dropped(gi)) continue;
        const value = faults ? faults.value(metric, gi, drawn) : drawn;
        parts.push(ts + m + gpu.idPart + value + '","' + gpu.labelsA + m + gpu.labelsB);
        if (++inChunk >= o.chunkRows) {
          yield parts.join('');
          parts = [];
          inChunk = 0;
        }
      }
    }
  }
  if (parts.length > 0) yield parts.join('');
}

/**
 * Write generated CSV to a file (created or truncated), honouring stream backpressure.
 * @returns the number of data rows and bytes written
 */
export async function writeDcgmCsv(
  path: string,
  options: GeneratorOptions = {},
): Promise<{ rows: number; bytes: number }> {
  const o = resolveGeneratorOptions(options);
  if (!Number.isFinite(o.rows)) bad('writeDcgmCsv needs a finite rows or durationMs');
  const out = createWriteStream(path);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  let bytes = 0;
  // Rows a `gone` fault left out are not written: count the lines instead of trusting the plan.
  let lines = o.header ? -1 : 0;
  try {
    for (const chunk of generateDcgmCsv(options)) {
      bytes += Buffer.byteLength(chunk);
      if (o.faults.length > 0)
        for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) lines++;
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  } catch (error) {
    out.destroy();
    throw new NexusError('INTERNAL', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { rows: o.faults.length > 0 ? lines : o.rows, bytes };
}
