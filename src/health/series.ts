/**
 * Health as Prometheus series: `nexus_gpu_health` (0 ok, 1 warning, 2 critical; label `state`) and
 * `nexus_gpu_health_reason` (1 per current reason; labels `code`, `severity`), each with the GPU's
 * labels as the label view gives its DCGM series (`cluster`, `Hostname`, `gpu`, `UUID`, `device`,
 * `modelName`). Served by /federate; usable by any rule evaluator that reads the hierarchy.
 */
import type { GpuHealth, HealthState } from './types.js';

/** Name of the per-GPU state series. */
export const HEALTH_METRIC = 'nexus_gpu_health';
/** Name of the per-reason series. */
export const HEALTH_REASON_METRIC = 'nexus_gpu_health_reason';

/** Value of `nexus_gpu_health` for a state. */
export const HEALTH_STATE_VALUE: Readonly<Record<HealthState, number>> = { ok: 0, warning: 1, critical: 2 };

/** What a health series needs of a GPU. */
export interface HealthSeriesGpu {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  device: string;
  modelName: string;
  gpuHealth: GpuHealth;
}

/** One health series with its value. */
export interface HealthSample {
  labels: Record<string, string>;
  value: number;
}

/** The health series of a GPU: its state, then one per reason. */
export function healthSeries(g: HealthSeriesGpu): HealthSample[] {
  const base = {
    cluster: g.clusterId,
    Hostname: g.hostname,
    gpu: g.gpuId,
    UUID: g.uuid,
    device: g.device,
    modelName: g.modelName,
  };
  const out: HealthSample[] = [
    {
      labels: { __name__: HEALTH_METRIC, ...base, state: g.gpuHealth.state },
      value: HEALTH_STATE_VALUE[g.gpuHealth.state],
    },
  ];
  for (const r of g.gpuHealth.reasons) {
    out.push({
      labels: { __name__: HEALTH_REASON_METRIC, ...base, code: r.code, severity: r.severity },
      value: 1,
    });
  }
  return out;
}
