/**
 * Temperature limits of known GPU models: the GPU temperature (C) at which the model leaves its
 * operating range and slows down. Values are approximations from public data sheets and
 * `nvidia-smi -q`; an unknown model gets {@link DEFAULT_SLOWDOWN_C}.
 */

/** Slowdown temperature of a model not in the table, C. */
export const DEFAULT_SLOWDOWN_C = 85;

/** Slowdown temperature by DCGM `modelName`, C. */
export const MODEL_SLOWDOWN_C: Readonly<Record<string, number>> = {
  'NVIDIA H100 80GB HBM3': 87,
  'NVIDIA H100 PCIe': 85,
  'NVIDIA H200': 87,
  'NVIDIA A100-SXM4-80GB': 85,
  'NVIDIA A100-SXM4-40GB': 85,
  'NVIDIA A100 80GB PCIe': 85,
  'NVIDIA L40S': 88,
  'Tesla V100-SXM2-32GB': 83,
};

/** The slowdown temperature (C) of a model. */
export function slowdownTemperature(modelName: string): number {
  return MODEL_SLOWDOWN_C[modelName] ?? DEFAULT_SLOWDOWN_C;
}
