/**
 * GPU status and health for GraphQL: the main latest values by name, and the health model
 * (src/health) as GraphQL shows it. `healthy` / `healthIssues` answer from the same model: the
 * codes of the GPU's health reasons, plus INACTIVE when it is not active (seen within STALE_AFTER);
 * the presence reasons STALE and GPU_MISSING are left to INACTIVE there (and shown in `health`).
 */
import type { LatestValue } from '../../domain/types.js';
import { DEFAULT_SLOWDOWN_C } from '../../health/limits.js';
import { evaluateHealth } from '../../health/model.js';
import type { GpuHealth, HealthReasonCode } from '../../health/types.js';
import type { GpuStatus } from '../../hierarchy/reader.js';

/** GPU temperature (C) at or above which a GPU of a model the limits table does not know is OVERHEATING. */
export const HEALTH_TEMPERATURE_LIMIT_C = DEFAULT_SLOWDOWN_C;

/** A health reason code, or INACTIVE (not seen within STALE_AFTER). */
export type HealthIssue = 'INACTIVE' | HealthReasonCode;

/** A health reason as GraphQL's HealthReason. */
export interface HealthReasonNode {
  code: HealthReasonCode;
  severity: 'WARNING' | 'CRITICAL';
  message: string;
  since: number;
  field: string | null;
  value: number | null;
}

/** Health as GraphQL's GPUHealth. */
export interface GpuHealthNode {
  state: 'OK' | 'WARNING' | 'CRITICAL';
  since: number;
  reasons: HealthReasonNode[];
}

/** GraphQL's GPUHealth of a health value. */
export function healthNode(h: GpuHealth): GpuHealthNode {
  return {
    state: h.state === 'ok' ? 'OK' : h.state === 'warning' ? 'WARNING' : 'CRITICAL',
    since: h.sinceMs,
    reasons: h.reasons.map((r) => ({
      code: r.code,
      severity: r.severity === 'warning' ? 'WARNING' : 'CRITICAL',
      message: r.message,
      since: r.sinceMs,
      field: r.field ?? null,
      value: r.value ?? null,
    })),
  };
}

/** What the status view needs of a GPU: health when the reader gave it, else it is evaluated. */
type StatusInput = Pick<GpuStatus, 'active' | 'metrics'> &
  Partial<Pick<GpuStatus, 'gpuHealth' | 'modelName'>>;

/** The GPU's health: the reader's, or one evaluated from its latest values alone. */
export function healthOf(gpu: StatusInput): GpuHealth {
  if (gpu.gpuHealth) return gpu.gpuHealth;
  const newest = Math.max(0, ...Object.values(gpu.metrics).map((m) => m.timestampMs));
  return evaluateHealth({ metrics: gpu.metrics, modelName: gpu.modelName ?? '', lastSampleMs: newest });
}

/** Latest values and health of one GPU, as GraphQL's GPUStatus. */
export interface GpuStatusView {
  utilizationPercent: number | null;
  temperatureCelsius: number | null;
  memoryTemperatureCelsius: number | null;
  powerWatts: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  memoryCopyUtilizationPercent: number | null;
  smClockMHz: number | null;
  memClockMHz: number | null;
  lastXidError: number | null;
  active: boolean;
  healthy: boolean;
  healthIssues: HealthIssue[];
}

/** A finite number, or null (GraphQL Float fields never carry NaN or Infinity). */
export function finiteOrNull(value: number | undefined | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function latest(metrics: Record<string, LatestValue>, field: string): number | null {
  return finiteOrNull(metrics[field]?.value);
}

/** Reasons that are about presence: the legacy INACTIVE (wall-clock activity, gone marks) stands for them. */
const PRESENCE_CODES: ReadonlySet<HealthReasonCode> = new Set(['STALE', 'GPU_MISSING']);

/**
 * Every health issue of `gpu` (empty when healthy): INACTIVE when it is not active, then the codes
 * of its health reasons other than STALE and GPU_MISSING (whose news INACTIVE already gives).
 */
export function healthIssues(gpu: StatusInput): HealthIssue[] {
  const issues: HealthIssue[] = [];
  if (!gpu.active) issues.push('INACTIVE');
  for (const r of healthOf(gpu).reasons)
    if (!PRESENCE_CODES.has(r.code) && !issues.includes(r.code)) issues.push(r.code);
  return issues;
}

/** GPUStatus of a GPU from its live record. */
export function gpuStatusView(gpu: StatusInput): GpuStatusView {
  const m = gpu.metrics;
  const issues = healthIssues(gpu);
  return {
    utilizationPercent: latest(m, 'DCGM_FI_DEV_GPU_UTIL'),
    temperatureCelsius: latest(m, 'DCGM_FI_DEV_GPU_TEMP'),
    memoryTemperatureCelsius: latest(m, 'DCGM_FI_DEV_MEMORY_TEMP'),
    powerWatts: latest(m, 'DCGM_FI_DEV_POWER_USAGE'),
    memoryUsedMiB: latest(m, 'DCGM_FI_DEV_FB_USED'),
    memoryFreeMiB: latest(m, 'DCGM_FI_DEV_FB_FREE'),
    memoryCopyUtilizationPercent: latest(m, 'DCGM_FI_DEV_MEM_COPY_UTIL'),
    smClockMHz: latest(m, 'DCGM_FI_DEV_SM_CLOCK'),
    memClockMHz: latest(m, 'DCGM_FI_DEV_MEM_CLOCK'),
    lastXidError: latest(m, 'DCGM_FI_DEV_XID_ERRORS'),
    active: gpu.active,
    healthy: issues.length === 0,
    healthIssues: issues,
  };
}
