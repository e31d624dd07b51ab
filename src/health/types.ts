/**
 * Types of the GPU health model: a state (ok / warning / critical) with the reasons behind it, each
 * with a code, a severity, a message and the sample time it began.
 */

/** Overall health of a GPU. */
export type HealthState = 'ok' | 'warning' | 'critical';

/** Severity of one reason. */
export type HealthSeverity = 'warning' | 'critical';

/** Codes of health reasons (docs/alerting.md lists what raises each). */
export const HEALTH_REASON_CODES = [
  'XID_ERROR',
  'ECC_DBE',
  'RETIRED_PAGES',
  'ROWS_REMAPPED',
  'ROW_REMAP_FAILURE',
  'THROTTLE_SW_POWER_CAP',
  'THROTTLE_HW_SLOWDOWN',
  'THROTTLE_SW_THERMAL',
  'THROTTLE_HW_THERMAL',
  'THROTTLE_HW_POWER_BRAKE',
  'OVERHEATING',
  'PCIE_REPLAYS',
  'NVLINK_ERRORS',
  'GPU_MISSING',
  'STALE',
  'PEER_OUTLIER',
] as const;

/** One of {@link HEALTH_REASON_CODES}. */
export type HealthReasonCode = (typeof HEALTH_REASON_CODES)[number];

/** Why a GPU is not ok. */
export interface HealthReason {
  code: HealthReasonCode;
  severity: HealthSeverity;
  /** One line for people, e.g. `XID 79: GPU has fallen off the bus: ...`. */
  message: string;
  /** Sample time (ms) the reason began. */
  sinceMs: number;
  /** The DCGM field behind the reason, when there is one. */
  field?: string;
  /** The field's value that raised it (XID code, counter value, temperature, bit field). */
  value?: number;
}

/** Health of one GPU. */
export interface GpuHealth {
  state: HealthState;
  /** Sample time (ms) the GPU entered `state` (for ok with no history: its first sample). */
  sinceMs: number;
  /** Every reason, most severe first, then by code. */
  reasons: HealthReason[];
}

/** A counter's last value and the sample time it last rose. */
export interface CounterMark {
  value: number;
  timestampMs: number;
  increasedAtMs?: number;
}

/** Health as the hierarchy stores it in a GPU record: with what the next evaluation needs. */
export interface StoredHealth extends GpuHealth {
  /** Last value of each error counter, by DCGM field (to see an increase). */
  counters: Record<string, CounterMark>;
  /** Newest non-zero XID seen, and its sample time. */
  lastXid?: { code: number; atMs: number };
  /** True when the write that stored it changed the state or the set of reason codes. */
  changed?: boolean;
}
