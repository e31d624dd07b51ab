/**
 * What analytics reads from a series: the DCGM fields it uses, whether a series belongs to a
 * workload, its workload identity, and the share of a GPU it stands for (MIG instances: N/7).
 */
import type { SeriesKey } from '../domain/types.js';
import { MIG_INSTANCE_LABEL, MIG_PROFILE_LABEL } from '../hierarchy/records.js';

/** Utilization, %: its samples mark the time a GPU was held (one scrape interval each). */
export const UTIL = 'DCGM_FI_DEV_GPU_UTIL';
/** Board power, W: integrated into energy. */
export const POWER = 'DCGM_FI_DEV_POWER_USAGE';
/** Framebuffer used, MiB. */
export const FB_USED = 'DCGM_FI_DEV_FB_USED';
/** GPU temperature, C. */
export const TEMP = 'DCGM_FI_DEV_GPU_TEMP';
/** SM clock, MHz. */
export const SM_CLOCK = 'DCGM_FI_DEV_SM_CLOCK';

/** True when the series carries a workload (any of namespace, pod, container). */
export function hasWorkload(s: SeriesKey): boolean {
  return s.namespace !== '' || s.pod !== '' || s.container !== '';
}

/** The MIG instance id of a series, or '' for a whole GPU. */
export function migInstance(s: SeriesKey): string {
  return s.labels[MIG_INSTANCE_LABEL] ?? '';
}

/**
 * The share of its GPU a series stands for: 1 for a whole GPU; for a MIG instance with profile
 * `<N>g.<M>gb` (A100 and H100 have 7 compute slices), N/7; a MIG instance whose profile is missing
 * or unreadable counts as 1/7.
 */
export function gpuFraction(s: SeriesKey): number {
  if (migInstance(s) === '') return 1;
  const m = /^(\d+)g\./.exec(s.labels[MIG_PROFILE_LABEL] ?? '');
  const slices = m ? Number(m[1]) : 1;
  return Math.min(7, Math.max(1, slices)) / 7;
}

/** The GPU a series belongs to (cluster, host, index; MIG instance included). */
export function gpuKey(s: SeriesKey): string {
  return [s.clusterId, s.hostname, s.gpuId, migInstance(s)].join('\u0000');
}
