/**
 * GPU status for GraphQL: the main latest values by name, and the documented health rule. A GPU is
 * healthy when it is active (seen within STALE_AFTER), its temperature is below 85 C, its last XID
 * error is 0 and row remapping has not failed; a metric that is not reported does not count against it.
 */
import type { LatestValue } from '../../domain/types.js';
import type { GpuStatus } from '../../hierarchy/reader.js';

/** GPU temperature (C) at or above which a GPU is OVERHEATING (H100 slowdown starts near 87 C). */
export const HEALTH_TEMPERATURE_LIMIT_C = 85;

/** A failed health rule. */
export type HealthIssue = 'INACTIVE' | 'OVERHEATING' | 'XID_ERROR' | 'ROW_REMAP_FAILURE';

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

/** Every health rule `gpu` fails (empty when healthy). */
export function healthIssues(gpu: Pick<GpuStatus, 'active' | 'metrics'>): HealthIssue[] {
  const issues: HealthIssue[] = [];
  if (!gpu.active) issues.push('INACTIVE');
  const temperature = latest(gpu.metrics, 'DCGM_FI_DEV_GPU_TEMP');
  if (temperature !== null && temperature >= HEALTH_TEMPERATURE_LIMIT_C) issues.push('OVERHEATING');
  const xid = latest(gpu.metrics, 'DCGM_FI_DEV_XID_ERRORS');
  if (xid !== null && xid !== 0) issues.push('XID_ERROR');
  const remap = latest(gpu.metrics, 'DCGM_FI_DEV_ROW_REMAP_FAILURE');
  if (remap !== null && remap !== 0) issues.push('ROW_REMAP_FAILURE');
  return issues;
}

/** GPUStatus of a GPU from its live record. */
export function gpuStatusView(gpu: Pick<GpuStatus, 'active' | 'metrics'>): GpuStatusView {
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
