/**
 * Fault injection for the generator: XID bursts, ECC double-bit errors, retired pages, remapped rows
 * and remap failures, thermal and power throttling, overheating, a GPU disappearing, PCIe replays and
 * NVLink errors, each on chosen GPUs over a window of time from the first scrape. The text form
 * (`--faults`) is `<kind>:<host>/<gpu>@<from>-<to>[:key=value,...]`, several joined by `;`
 * (docs/alerting.md, "Injecting faults"). A window is half-open, [from, to): the fault shows in the
 * scrapes whose offset from the first scrape is at least `from` and below `to`; counters keep what a
 * fault added after it ends (they are counters), every other effect stops.
 * With faults, the fields they need join the generated metrics, and the generator's spontaneous
 * errors (random XIDs, PCIe replays) are left out, so only the injected faults show.
 */
import { NexusError } from '../errors.js';
import { parseDuration } from '../config/duration.js';

/** Kinds of injectable faults. */
export const FAULT_KINDS = [
  'xid',
  'ecc-dbe',
  'retired-pages',
  'row-remap',
  'remap-failure',
  'thermal-throttle',
  'power-throttle',
  'overheat',
  'gone',
  'pcie-replay',
  'nvlink-error',
] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One injected fault (the programmatic form of one `--faults` item). */
export interface FaultSpec {
  kind: FaultKind;
  /**
   * Host: its full name (`sim-dgx1-hgpu-002`), a 1-based index as `2` or `host002` (the second
   * generated host), or `*` for every host.
   */
  host: string;
  /** GPU index within the host (`gpu_id`), or `*` for every GPU of the host. */
  gpu: number | '*';
  /** Window start, ms after the first scrape (inclusive). */
  fromMs: number;
  /** Window end, ms after the first scrape (exclusive); `Infinity` = until the end of the data. */
  toMs: number;
  /**
   * Kind-specific numbers: `code` (xid, default 13), `count` per scrape (ecc-dbe 1,
   * retired-pages 1, row-remap 1, pcie-replay 10, nvlink-error 5), `bits` (throttle reasons; default
   * thermal-throttle 0x20 sw thermal, power-throttle 0x4 sw power cap), `temp` (overheat, C; default 95).
   */
  params?: Record<string, number>;
}

/** Fields each kind writes (added to the generated metrics when missing). */
export const FAULT_FIELDS: Readonly<Record<FaultKind, readonly string[]>> = {
  xid: ['DCGM_FI_DEV_XID_ERRORS'],
  'ecc-dbe': ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL'],
  'retired-pages': ['DCGM_FI_DEV_RETIRED_DBE'],
  'row-remap': ['DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS'],
  'remap-failure': ['DCGM_FI_DEV_ROW_REMAP_FAILURE'],
  'thermal-throttle': ['DCGM_FI_DEV_CLOCK_THROTTLE_REASONS'],
  'power-throttle': ['DCGM_FI_DEV_CLOCK_THROTTLE_REASONS'],
  overheat: ['DCGM_FI_DEV_GPU_TEMP'],
  gone: [],
  'pcie-replay': ['DCGM_FI_DEV_PCIE_REPLAY_COUNTER'],
  'nvlink-error': ['DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL'],
};

/** Default parameters by kind. */
const DEFAULT_PARAMS: Readonly<Record<FaultKind, Readonly<Record<string, number>>>> = {
  xid: { code: 13 },
  'ecc-dbe': { count: 1 },
  'retired-pages': { count: 1 },
  'row-remap': { count: 1 },
  'remap-failure': {},
  'thermal-throttle': { bits: 0x20 },
  'power-throttle': { bits: 0x4 },
  overheat: { temp: 95 },
  gone: {},
  'pcie-replay': { count: 10 },
  'nvlink-error': { count: 5 },
};

/** Counter fields a fault adds to per scrape, by kind. */
const COUNTER_OF: Partial<Record<FaultKind, string>> = {
  'ecc-dbe': 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
  'retired-pages': 'DCGM_FI_DEV_RETIRED_DBE',
  'row-remap': 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
  'pcie-replay': 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER',
  'nvlink-error': 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
};

function bad(message: string): never {
  throw new NexusError('BAD_REQUEST', `faults: ${message}`);
}

function offset(text: string, item: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  const ms = parseDuration(t);
  if (ms === undefined || ms < 0) bad(`'${t}' in '${item}' is not a duration like 90s, 10m or 1h`);
  return ms;
}

/**
 * Parse the `--faults` text: items `<kind>:<host>/<gpu>@<from>-<to>[:key=value,...]` joined by `;`.
 * `<gpu>` is `3`, `gpu3` or `*`; `<to>` may be empty (until the end); numbers in params may be hex
 * (`bits=0x40`).
 * @throws NexusError('BAD_REQUEST') naming the item and what is wrong
 */
export function parseFaults(text: string): FaultSpec[] {
  const out: FaultSpec[] = [];
  for (const raw of text.split(';')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^([a-z-]+):([^/@:]+)\/([^@:]+)@([^-:]*)-([^:]*)(?::(.*))?$/.exec(item);
    if (!m) bad(`'${item}' is not <kind>:<host>/<gpu>@<from>-<to>[:key=value,...]`);
    const [, kind, host, gpuText, from, to, paramText] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string | undefined,
    ];
    if (!(FAULT_KINDS as readonly string[]).includes(kind))
      bad(`unknown kind '${kind}' in '${item}' (kinds: ${FAULT_KINDS.join(', ')})`);
    const gpuMatch = /^(?:gpu)?(\d+)$/.exec(gpuText.trim());
    if (gpuText.trim() !== '*' && !gpuMatch) bad(`GPU '${gpuText}' in '${item}' is not 3, gpu3 or *`);
    const params: Record<string, number> = {};
    for (const pair of paramText ? paramText.split(',') : []) {
      const [key, value] = pair.split('=').map((s) => s.trim());
      const n = value === undefined || value === '' ? NaN : Number(value);
      if (!key || !Number.isFinite(n)) bad(`parameter '${pair}' in '${item}' is not key=number`);
      params[key] = n;
    }
    const spec: FaultSpec = {
      kind: kind as FaultKind,
      host: host.trim(),
      gpu: gpuMatch ? Number(gpuMatch[1]) : '*',
      fromMs: from.trim() === '' ? 0 : offset(from, item),
      toMs: to.trim() === '' ? Infinity : offset(to, item),
    };
    if (Object.keys(params).length > 0) spec.params = params;
    out.push(spec);
  }
  for (const spec of out) checkFault(spec);
  return out;
}

/** Check one fault's fields. @throws NexusError('BAD_REQUEST') */
export function checkFault(spec: FaultSpec): void {
  if (!(FAULT_KINDS as readonly string[]).includes(spec.kind)) bad(`unknown kind '${String(spec.kind)}'`);
  if (spec.host === '') bad('host must not be empty');
  if (spec.gpu !== '*' && !(Number.isInteger(spec.gpu) && spec.gpu >= 0))
    bad(`gpu must be a GPU index or '*', got ${String(spec.gpu)}`);
  if (!(spec.fromMs >= 0) || !(spec.toMs > spec.fromMs))
    bad(`${spec.kind} window ${spec.fromMs}..${spec.toMs} ms must have 0 <= from < to`);
}

/** The fields the faults need, in kind order, without duplicates. */
export function faultFields(faults: readonly FaultSpec[]): string[] {
  return [...new Set(faults.flatMap((f) => FAULT_FIELDS[f.kind]))];
}

/** A GPU the injector sees: its host's 1-based position and name, and its index. */
export interface FaultTarget {
  hostIndex: number;
  hostname: string;
  gpu: number;
}

/** Whether `spec` names this GPU. */
export function faultMatches(spec: FaultSpec, t: FaultTarget): boolean {
  if (spec.gpu !== '*' && spec.gpu !== t.gpu) return false;
  const h = spec.host;
  if (h === '*' || h === t.hostname) return true;
  const n = /^(?:host)?0*(\d+)$/.exec(h);
  return n !== null && Number(n[1]) === t.hostIndex;
}

/**
 * Applies faults to generated values, scrape by scrape: {@link beginScrape} once per scrape, then
 * {@link value} per row. Counters a fault touches restart from the value the GPU had at the first
 * scrape and grow only by injected counts.
 */
export class FaultInjector {
  /** Faults per GPU (index in generator order). */
  private readonly byGpu: FaultSpec[][];
  /** Injected counter totals per GPU, by field. */
  private readonly counters: Map<string, number>[];
  /** First generated value per GPU and counter field. */
  private readonly baseline: Map<string, string>[];
  private offsetMs = 0;

  constructor(faults: readonly FaultSpec[], targets: readonly FaultTarget[]) {
    for (const f of faults) checkFault(f);
    this.byGpu = targets.map((t) => faults.filter((f) => faultMatches(f, t)));
    this.counters = targets.map(() => new Map());
    this.baseline = targets.map(() => new Map());
  }

  private activeOn(gpu: number, kind: FaultKind): FaultSpec[] {
    return this.byGpu[gpu]!.filter(
      (f) => f.kind === kind && this.offsetMs >= f.fromMs && this.offsetMs < f.toMs,
    );
  }

  /** Start the scrape at `offsetMs` after the first: counter faults add their per-scrape counts. */
  beginScrape(offsetMs: number): void {
    this.offsetMs = offsetMs;
    this.byGpu.forEach((faults, gpu) => {
      for (const f of faults) {
        const field = COUNTER_OF[f.kind];
        if (field === undefined || offsetMs < f.fromMs || offsetMs >= f.toMs) continue;
        const counters = this.counters[gpu]!;
        counters.set(field, (counters.get(field) ?? 0) + param(f, 'count'));
      }
    });
  }

  /** Whether the GPU sends no rows at this scrape (a `gone` fault). */
  dropped(gpu: number): boolean {
    return this.activeOn(gpu, 'gone').length > 0;
  }

  /** The value text of `field` for GPU `gpu` at this scrape, given what the generator drew. */
  value(field: string, gpu: number, generated: string): string {
    switch (field) {
      case 'DCGM_FI_DEV_XID_ERRORS': {
        const xid = this.activeOn(gpu, 'xid').at(-1);
        return xid ? String(param(xid, 'code')) : '0';
      }
      case 'DCGM_FI_DEV_ROW_REMAP_FAILURE':
        return this.activeOn(gpu, 'remap-failure').length > 0 ? '1' : generated;
      case 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS': {
        let bits = Number(generated) || 0;
        for (const f of [...this.activeOn(gpu, 'thermal-throttle'), ...this.activeOn(gpu, 'power-throttle')])
          bits |= param(f, 'bits');
        return String(bits);
      }
      case 'DCGM_FI_DEV_GPU_TEMP':
      case 'DCGM_FI_DEV_MEMORY_TEMP': {
        const hot = this.activeOn(gpu, 'overheat').at(-1);
        if (!hot) return generated;
        return String(param(hot, 'temp') + (field === 'DCGM_FI_DEV_MEMORY_TEMP' ? 6 : 0));
      }
      default: {
        if (!COUNTER_FIELDS.has(field)) return generated;
        const base = this.baseline[gpu]!;
        let first = base.get(field);
        if (first === undefined) base.set(field, (first = generated));
        return String((Number(first) || 0) + (this.counters[gpu]!.get(field) ?? 0));
      }
    }
  }
}

const COUNTER_FIELDS = new Set(Object.values(COUNTER_OF));

function param(f: FaultSpec, key: string): number {
  return f.params?.[key] ?? DEFAULT_PARAMS[f.kind][key] ?? 0;
}
