/**
 * GPU model profiles and the DCGM field list the generator knows how to shape. The H100 profile is
 * calibrated on the real sample (sample/dcgm_metrics_20250718_134233.csv); the others are
 * approximations from public spec sheets.
 */

/** Physical limits and idle/busy levels of one GPU model. */
export interface ModelProfile {
  /** DCGM `modelName`. */
  name: string;
  /** FB_USED + FB_FREE in MiB (constant per model: total minus the driver's reservation). */
  fbTotalMiB: number;
  /** Board power limit, W. */
  maxPowerW: number;
  /** Typical idle power, W. */
  idlePowerW: number;
  /** SM clock when busy and when idle, MHz. */
  smClockMaxMHz: number;
  smClockIdleMHz: number;
  /** Memory clock, MHz (constant). */
  memClockMHz: number;
}

/** Known models, by DCGM `modelName`. */
export const MODEL_PROFILES: Readonly<Record<string, ModelProfile>> = {
  'NVIDIA H100 80GB HBM3': {
    name: 'NVIDIA H100 80GB HBM3',
    fbTotalMiB: 81007,
    maxPowerW: 700,
    idlePowerW: 71,
    smClockMaxMHz: 1980,
    smClockIdleMHz: 345,
    memClockMHz: 2619,
  },
  'NVIDIA A100-SXM4-80GB': {
    name: 'NVIDIA A100-SXM4-80GB',
    fbTotalMiB: 81251,
    maxPowerW: 400,
    idlePowerW: 62,
    smClockMaxMHz: 1410,
    smClockIdleMHz: 210,
    memClockMHz: 1593,
  },
  'NVIDIA A100-SXM4-40GB': {
    name: 'NVIDIA A100-SXM4-40GB',
    fbTotalMiB: 40537,
    maxPowerW: 400,
    idlePowerW: 55,
    smClockMaxMHz: 1410,
    smClockIdleMHz: 210,
    memClockMHz: 1215,
  },
};

/** The default model (the sample's). */
export const DEFAULT_MODEL = 'NVIDIA H100 80GB HBM3';

/** Profile for `model`; an unknown name gets the H100 limits under its own name. */
export function profileFor(model: string, fbTotalMiB?: number): ModelProfile {
  const base = MODEL_PROFILES[model] ?? { ...MODEL_PROFILES[DEFAULT_MODEL]!, name: model };
  return fbTotalMiB === undefined ? base : { ...base, fbTotalMiB };
}

/** The ten fields of the sample, in the sample's row order. */
export const SAMPLE_METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_MEM_COPY_UTIL',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_FB_USED',
  'DCGM_FI_DEV_FB_FREE',
  'DCGM_FI_DEV_DEC_UTIL',
  'DCGM_FI_DEV_ENC_UTIL',
  'DCGM_FI_DEV_SM_CLOCK',
  'DCGM_FI_DEV_MEM_CLOCK',
] as const;

/** Further dcgm-exporter default fields the generator shapes, used when more than ten are asked for. */
export const EXTRA_METRICS = [
  'DCGM_FI_DEV_MEMORY_TEMP',
  'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION',
  'DCGM_FI_DEV_PCIE_REPLAY_COUNTER',
  'DCGM_FI_DEV_XID_ERRORS',
  'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
  'DCGM_FI_DEV_VGPU_LICENSE_STATUS',
  'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
  'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS',
  'DCGM_FI_DEV_ROW_REMAP_FAILURE',
  'DCGM_FI_PROF_GR_ENGINE_ACTIVE',
  'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE',
  'DCGM_FI_PROF_DRAM_ACTIVE',
  'DCGM_FI_PROF_PCIE_TX_BYTES',
  'DCGM_FI_PROF_PCIE_RX_BYTES',
] as const;

/**
 * Resolve a metric count to field names: the sample's ten first, then {@link EXTRA_METRICS}, then
 * synthetic `DCGM_FI_CUSTOM_<n>` gauges (unknown fields, which the pipeline must store as they come).
 */
export function metricNames(count: number): string[] {
  const known: string[] = [...SAMPLE_METRICS, ...EXTRA_METRICS];
  const names = known.slice(0, count);
  for (let k = names.length; k < count; k++) names.push(`DCGM_FI_CUSTOM_${k - known.length + 1}`);
  return names;
}
