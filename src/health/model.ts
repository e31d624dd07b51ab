/**
 * The GPU health model: evaluates a GPU's latest DCGM values (with what the previous evaluation kept:
 * counter values, the last XID) into a state with reasons. Gauges (XID, throttle bits, temperature,
 * remap failure) count while their latest value says so; an XID and an error counter's increase
 * (ECC DBE, retired pages, remapped rows, PCIe replays, NVLink errors) count for
 * {@link HEALTH_HOLD_MS} of sample time after they were seen. Every time is a sample time, never the
 * wall clock: staleness is judged at read time by {@link withStaleness}.
 */
import type { LatestValue } from '../domain/types.js';
import { slowdownTemperature } from './limits.js';
import { THROTTLE_FIELDS, throttleBits } from './throttle.js';
import type {
  CounterMark,
  GpuHealth,
  HealthReason,
  HealthReasonCode,
  HealthSeverity,
  HealthState,
  StoredHealth,
} from './types.js';
import { xidInfo } from './xid.js';

/** How long (sample time, ms) an XID or a counter increase keeps its reason after it was seen. */
export const HEALTH_HOLD_MS = 5 * 60_000;

/** The XID field. */
export const XID_FIELD = 'DCGM_FI_DEV_XID_ERRORS';

/** Error counters whose increase is a reason, with the reason's code, severity and wording. */
export const HEALTH_COUNTERS: readonly {
  field: string;
  code: HealthReasonCode;
  severity: HealthSeverity;
  what: string;
}[] = [
  {
    field: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
    code: 'ECC_DBE',
    severity: 'critical',
    what: 'double-bit ECC errors',
  },
  {
    field: 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL',
    code: 'ECC_DBE',
    severity: 'critical',
    what: 'double-bit ECC errors',
  },
  {
    field: 'DCGM_FI_DEV_RETIRED_DBE',
    code: 'RETIRED_PAGES',
    severity: 'warning',
    what: 'pages retired for double-bit errors',
  },
  {
    field: 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
    code: 'ROWS_REMAPPED',
    severity: 'warning',
    what: 'rows remapped for uncorrectable errors',
  },
  {
    field: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER',
    code: 'PCIE_REPLAYS',
    severity: 'warning',
    what: 'PCIe replays',
  },
  {
    field: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    code: 'NVLINK_ERRORS',
    severity: 'warning',
    what: 'NVLink CRC flit errors',
  },
  {
    field: 'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL',
    code: 'NVLINK_ERRORS',
    severity: 'warning',
    what: 'NVLink CRC data errors',
  },
  {
    field: 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL',
    code: 'NVLINK_ERRORS',
    severity: 'warning',
    what: 'NVLink replay errors',
  },
  {
    field: 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
    code: 'NVLINK_ERRORS',
    severity: 'warning',
    what: 'NVLink recovery errors',
  },
];

/** What one evaluation looks at. */
export interface HealthInput {
  /** Latest value of each field. */
  metrics: Record<string, LatestValue>;
  modelName: string;
  /** The GPU's newest sample time (ms): "now" for the hold windows (or `goneSinceMs` when later). */
  lastSampleMs: number;
  /** Set when the GPU's scrape target stopped exposing it. */
  goneSinceMs?: number;
  /** The previous evaluation, for counter increases, the last XID and reasons' start times. */
  previous?: StoredHealth;
  /** Non-zero XID samples seen since the previous evaluation (one round may hold several scrapes). */
  xids?: readonly { code: number; atMs: number }[];
}

const RANK: Record<HealthState, number> = { ok: 0, warning: 1, critical: 2 };

/** The more severe of two states. */
export function worseState(a: HealthState, b: HealthState): HealthState {
  return RANK[a] >= RANK[b] ? a : b;
}

const finite = (v: LatestValue | undefined): v is LatestValue => v !== undefined && Number.isFinite(v.value);

/** Evaluate a GPU's health. Pure: the same input gives the same result. */
export function evaluateHealth(input: HealthInput): StoredHealth {
  const { metrics, previous } = input;
  const now = Math.max(input.lastSampleMs, input.goneSinceMs ?? 0);
  const found: HealthReason[] = [];
  const add = (reason: HealthReason): void => {
    // One reason per code: the most severe (then the first) wins.
    const i = found.findIndex((r) => r.code === reason.code);
    if (i < 0) found.push(reason);
    else if (RANK[reason.severity] > RANK[found[i]!.severity]) found[i] = reason;
  };

  // XID: the newest non-zero code, held for HEALTH_HOLD_MS.
  let lastXid = previous?.lastXid;
  const xidNow = metrics[XID_FIELD];
  const seen = [...(input.xids ?? [])];
  if (finite(xidNow) && xidNow.value !== 0) seen.push({ code: xidNow.value, atMs: xidNow.timestampMs });
  for (const s of seen) if (!lastXid || s.atMs >= lastXid.atMs) lastXid = { code: s.code, atMs: s.atMs };
  if (lastXid && now - lastXid.atMs <= HEALTH_HOLD_MS) {
    const info = xidInfo(lastXid.code);
    add({
      code: 'XID_ERROR',
      severity: info.severity,
      message: `XID ${lastXid.code}: ${info.meaning}`,
      sinceMs: lastXid.atMs,
      field: XID_FIELD,
      value: lastXid.code,
    });
  }

  // Error counters: an increase over the previous value, held for HEALTH_HOLD_MS.
  const counters: Record<string, CounterMark> = {};
  for (const c of HEALTH_COUNTERS) {
    const cur = metrics[c.field];
    const prev = previous?.counters[c.field];
    if (!finite(cur)) {
      if (prev) counters[c.field] = prev;
      continue;
    }
    const mark: CounterMark = { value: cur.value, timestampMs: cur.timestampMs };
    if (prev && cur.timestampMs > prev.timestampMs && cur.value > prev.value)
      mark.increasedAtMs = cur.timestampMs;
    else if (prev?.increasedAtMs !== undefined) mark.increasedAtMs = prev.increasedAtMs;
    if (prev && cur.timestampMs < prev.timestampMs) {
      counters[c.field] = prev;
      continue;
    }
    counters[c.field] = mark;
    if (mark.increasedAtMs !== undefined && now - mark.increasedAtMs <= HEALTH_HOLD_MS) {
      add({
        code: c.code,
        severity: c.severity,
        message: `${c.what} rose to ${cur.value}`,
        sinceMs: mark.increasedAtMs,
        field: c.field,
        value: cur.value,
      });
    }
  }

  const remap = metrics.DCGM_FI_DEV_ROW_REMAP_FAILURE;
  if (finite(remap) && remap.value !== 0) {
    add({
      code: 'ROW_REMAP_FAILURE',
      severity: 'critical',
      message: 'row remapping failed: the memory has no spare rows left for this error',
      sinceMs: remap.timestampMs,
      field: 'DCGM_FI_DEV_ROW_REMAP_FAILURE',
      value: remap.value,
    });
  }

  for (const field of THROTTLE_FIELDS) {
    const v = metrics[field];
    if (!finite(v)) continue;
    for (const bit of throttleBits(v.value)) {
      add({
        code: bit.code as HealthReasonCode,
        severity: bit.severity,
        message: `${bit.meaning} (throttle reasons 0x${v.value.toString(16)})`,
        sinceMs: v.timestampMs,
        field,
        value: v.value,
      });
    }
  }

  const temp = metrics.DCGM_FI_DEV_GPU_TEMP;
  const limit = slowdownTemperature(input.modelName);
  if (finite(temp) && temp.value >= limit) {
    add({
      code: 'OVERHEATING',
      severity: 'critical',
      message: `GPU temperature ${temp.value} C is at or above the ${limit} C slowdown limit of ${input.modelName || 'an unknown model'}`,
      sinceMs: temp.timestampMs,
      field: 'DCGM_FI_DEV_GPU_TEMP',
      value: temp.value,
    });
  }

  if (input.goneSinceMs !== undefined) {
    add({
      code: 'GPU_MISSING',
      severity: 'critical',
      message: 'the GPU is missing from its scrape target (fallen off the bus or removed)',
      sinceMs: input.goneSinceMs,
    });
  }

  const reasons = keepSince(found, previous?.reasons);
  const health = summarize(reasons, previous, now);
  const stored: StoredHealth = { ...health, counters };
  if (lastXid) stored.lastXid = lastXid;
  return stored;
}

/** A reason that was already present keeps its start time. */
function keepSince(reasons: HealthReason[], previous: readonly HealthReason[] | undefined): HealthReason[] {
  return reasons.map((r) => {
    const before = previous?.find((p) => p.code === r.code);
    return before && before.sinceMs <= r.sinceMs ? { ...r, sinceMs: before.sinceMs } : r;
  });
}

/** Reasons most severe first, then by code: the order every health carries. */
export function sortReasons(reasons: readonly HealthReason[]): HealthReason[] {
  return [...reasons].sort(
    (a, b) => RANK[b.severity] - RANK[a.severity] || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/** State and order of a reason list; the state keeps its start time while it does not change. */
function summarize(reasons: HealthReason[], previous: GpuHealth | undefined, nowMs: number): GpuHealth {
  const sorted = sortReasons(reasons);
  const state = sorted.reduce<HealthState>((s, r) => worseState(s, r.severity), 'ok');
  // A change is dated by the evaluation that saw it; a first evaluation by its earliest reason.
  let sinceMs = nowMs;
  if (previous?.state === state) sinceMs = previous.sinceMs;
  else if (!previous && state !== 'ok')
    sinceMs = Math.min(nowMs, ...sorted.filter((r) => r.severity === state).map((r) => r.sinceMs));
  return { state, sinceMs, reasons: sorted };
}

/**
 * Health at read time: the stored health plus STALE when the GPU's newest sample is more than
 * `staleAfterMs` older than `nowMs` (judged by sample time, not by when a collector wrote it).
 * Drops the stored bookkeeping (counters, last XID).
 */
export function withStaleness(
  health: GpuHealth,
  lastSampleMs: number,
  nowMs: number,
  staleAfterMs: number,
): GpuHealth {
  const base: GpuHealth = { state: health.state, sinceMs: health.sinceMs, reasons: health.reasons };
  if (lastSampleMs <= 0 || nowMs - lastSampleMs <= staleAfterMs) return base;
  const since = lastSampleMs + staleAfterMs;
  const stale: HealthReason = {
    code: 'STALE',
    severity: 'warning',
    message: `no sample for ${Math.round((nowMs - lastSampleMs) / 1000)} s (newest sample ${new Date(lastSampleMs).toISOString()})`,
    sinceMs: since,
  };
  const reasons = sortReasons([...health.reasons, stale]);
  const state = worseState(health.state, 'warning');
  return { state, sinceMs: state === health.state ? health.sinceMs : since, reasons };
}
