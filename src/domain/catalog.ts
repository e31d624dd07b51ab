/**
 * Catalog of DCGM fields: the DCGM field name stays the truth; the catalog adds a friendly name,
 * a unit and a kind (gauge or counter). It covers dcgm-exporter's default counters and the profiling
 * metrics it commonly enables. Fields not listed here are still stored; they just have no friendly name.
 */

export type MetricKind = 'gauge' | 'counter';

export interface FieldInfo {
  /** DCGM field name, e.g. `DCGM_FI_DEV_GPU_UTIL`. */
  field: string;
  /** camelCase name used by the GraphQL API and summaries, e.g. `gpuUtilization`. */
  friendlyName: string;
  unit: string;
  kind: MetricKind;
  description: string;
}

const f = (
  field: string,
  friendlyName: string,
  unit: string,
  kind: MetricKind,
  description: string,
): FieldInfo => ({
  field,
  friendlyName,
  unit,
  kind,
  description,
});

/** Every known field, in dcgm-exporter's default-counters order. */
export const DCGM_FIELDS: readonly FieldInfo[] = [
  f('DCGM_FI_DEV_SM_CLOCK', 'smClock', 'MHz', 'gauge', 'SM clock frequency'),
  f('DCGM_FI_DEV_MEM_CLOCK', 'memClock', 'MHz', 'gauge', 'Memory clock frequency'),
  f('DCGM_FI_DEV_MEMORY_TEMP', 'memoryTemperature', 'C', 'gauge', 'Memory temperature'),
  f('DCGM_FI_DEV_GPU_TEMP', 'temperature', 'C', 'gauge', 'GPU temperature'),
  f('DCGM_FI_DEV_POWER_USAGE', 'powerDraw', 'W', 'gauge', 'Power draw'),
  f(
    'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION',
    'totalEnergy',
    'mJ',
    'counter',
    'Total energy consumption since boot',
  ),
  f('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'pcieReplays', 'count', 'counter', 'Total number of PCIe retries'),
  f('DCGM_FI_DEV_GPU_UTIL', 'gpuUtilization', '%', 'gauge', 'GPU utilization'),
  f('DCGM_FI_DEV_MEM_COPY_UTIL', 'memCopyUtilization', '%', 'gauge', 'Memory copy utilization'),
  f('DCGM_FI_DEV_ENC_UTIL', 'encUtil', '%', 'gauge', 'Encoder utilization'),
  f('DCGM_FI_DEV_DEC_UTIL', 'decUtil', '%', 'gauge', 'Decoder utilization'),
  f('DCGM_FI_DEV_XID_ERRORS', 'xidErrors', 'code', 'gauge', 'Value of the last XID error encountered'),
  f('DCGM_FI_DEV_FB_FREE', 'fbFree', 'MiB', 'gauge', 'Framebuffer memory free'),
  f('DCGM_FI_DEV_FB_USED', 'fbUsed', 'MiB', 'gauge', 'Framebuffer memory used'),
  f('DCGM_FI_DEV_FB_RESERVED', 'fbReserved', 'MiB', 'gauge', 'Framebuffer memory reserved'),
  f(
    'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    'nvlinkBandwidthTotal',
    'count',
    'counter',
    'NVLink bandwidth counters, all lanes',
  ),
  f('DCGM_FI_DEV_VGPU_LICENSE_STATUS', 'vgpuLicenseStatus', 'status', 'gauge', 'vGPU license status'),
  f(
    'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
    'uncorrectableRemappedRows',
    'count',
    'counter',
    'Rows remapped for uncorrectable errors',
  ),
  f(
    'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS',
    'correctableRemappedRows',
    'count',
    'counter',
    'Rows remapped for correctable errors',
  ),
  f(
    'DCGM_FI_DEV_ROW_REMAP_FAILURE',
    'rowRemapFailure',
    'bool',
    'gauge',
    'Whether remapping of rows has failed',
  ),
  f('DCGM_FI_DEV_POWER_MGMT_LIMIT', 'powerLimit', 'W', 'gauge', 'Power management limit'),
  // Health fields (docs/alerting.md): ECC, page retirement, throttle reasons, NVLink errors.
  f('DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'eccSbeVolatile', 'count', 'counter', 'Single-bit volatile ECC errors'),
  f('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'eccDbeVolatile', 'count', 'counter', 'Double-bit volatile ECC errors'),
  f(
    'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL',
    'eccSbeAggregate',
    'count',
    'counter',
    'Single-bit persistent ECC errors',
  ),
  f(
    'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL',
    'eccDbeAggregate',
    'count',
    'counter',
    'Double-bit persistent ECC errors',
  ),
  f('DCGM_FI_DEV_RETIRED_SBE', 'retiredPagesSbe', 'count', 'counter', 'Pages retired for single-bit errors'),
  f('DCGM_FI_DEV_RETIRED_DBE', 'retiredPagesDbe', 'count', 'counter', 'Pages retired for double-bit errors'),
  f('DCGM_FI_DEV_RETIRED_PENDING', 'retiredPagesPending', 'count', 'gauge', 'Pages pending retirement'),
  f(
    'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS',
    'clockThrottleReasons',
    'bitmask',
    'gauge',
    'Current clock throttle reasons (bit field)',
  ),
  f(
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS',
    'clocksEventReasons',
    'bitmask',
    'gauge',
    'Current clock event reasons (bit field; newer name of the throttle reasons)',
  ),
  f(
    'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    'nvlinkCrcFlitErrors',
    'count',
    'counter',
    'NVLink flow-control CRC errors, all lanes',
  ),
  f(
    'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL',
    'nvlinkCrcDataErrors',
    'count',
    'counter',
    'NVLink data CRC errors, all lanes',
  ),
  f(
    'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL',
    'nvlinkReplayErrors',
    'count',
    'counter',
    'NVLink retries, all lanes',
  ),
  f(
    'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
    'nvlinkRecoveryErrors',
    'count',
    'counter',
    'NVLink recovery errors, all lanes',
  ),
  f(
    'DCGM_FI_PROF_GR_ENGINE_ACTIVE',
    'graphicsEngineActive',
    'ratio',
    'gauge',
    'Ratio of time the graphics engine is active',
  ),
  f(
    'DCGM_FI_PROF_SM_ACTIVE',
    'smActive',
    'ratio',
    'gauge',
    'Ratio of cycles an SM has at least one warp assigned',
  ),
  f('DCGM_FI_PROF_SM_OCCUPANCY', 'smOccupancy', 'ratio', 'gauge', 'Ratio of warps resident to the maximum'),
  f(
    'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE',
    'tensorActive',
    'ratio',
    'gauge',
    'Ratio of cycles the tensor pipe is active',
  ),
  f(
    'DCGM_FI_PROF_DRAM_ACTIVE',
    'dramActive',
    'ratio',
    'gauge',
    'Ratio of cycles the device memory interface is active',
  ),
  f(
    'DCGM_FI_PROF_PIPE_FP64_ACTIVE',
    'fp64Active',
    'ratio',
    'gauge',
    'Ratio of cycles the FP64 pipe is active',
  ),
  f(
    'DCGM_FI_PROF_PIPE_FP32_ACTIVE',
    'fp32Active',
    'ratio',
    'gauge',
    'Ratio of cycles the FP32 pipe is active',
  ),
  f(
    'DCGM_FI_PROF_PIPE_FP16_ACTIVE',
    'fp16Active',
    'ratio',
    'gauge',
    'Ratio of cycles the FP16 pipe is active',
  ),
  f('DCGM_FI_PROF_PCIE_TX_BYTES', 'pcieTxBytes', 'B/s', 'gauge', 'PCIe transmit rate, headers and payload'),
  f('DCGM_FI_PROF_PCIE_RX_BYTES', 'pcieRxBytes', 'B/s', 'gauge', 'PCIe receive rate, headers and payload'),
  f('DCGM_FI_PROF_NVLINK_TX_BYTES', 'nvlinkTxBytes', 'B/s', 'gauge', 'NVLink transmit rate'),
  f('DCGM_FI_PROF_NVLINK_RX_BYTES', 'nvlinkRxBytes', 'B/s', 'gauge', 'NVLink receive rate'),
];

const BY_FIELD = new Map(DCGM_FIELDS.map((info) => [info.field, info]));
const BY_FRIENDLY = new Map(DCGM_FIELDS.map((info) => [info.friendlyName, info]));

/** Catalog entry for a DCGM field name, or undefined for an unknown field (which is still stored). */
export function fieldInfo(field: string): FieldInfo | undefined {
  return BY_FIELD.get(field);
}

/** Catalog entry by friendly name (`gpuUtilization`). */
export function fieldByFriendlyName(name: string): FieldInfo | undefined {
  return BY_FRIENDLY.get(name);
}
