/** Small builders of samples and batches for tests. */
import { batchIdFor } from '../../src/domain/batch-codec.js';
import type { Batch, DeadLetter, Sample } from '../../src/domain/types.js';

/** A sample with sensible defaults; override any field. */
export function sample(overrides: Partial<Sample> = {}): Sample {
  return {
    clusterId: 'c1',
    hostname: 'host-a',
    gpuId: '0',
    uuid: 'GPU-aaaa-0',
    device: 'nvidia0',
    modelName: 'NVIDIA H100 80GB HBM3',
    metric: 'DCGM_FI_DEV_GPU_UTIL',
    container: '',
    pod: '',
    namespace: '',
    labels: { gpu: '0' },
    timestampMs: Date.parse('2025-07-18T20:42:34Z'),
    value: 42,
    ...overrides,
  };
}

/** A batch with a content-derived id. */
export function batch(samples: Sample[], deadLetters: DeadLetter[] = [], source = 'test.csv'): Batch {
  return { id: batchIdFor(source, samples, deadLetters), source, samples, deadLetters };
}

/** `n` characters that do not compress, so PostgreSQL cannot squeeze them under an index's row limit. */
export function incompressible(n: number, seed: number): string {
  let x = seed * 2_654_435_761;
  let out = '';
  while (out.length < n) {
    x = (Math.imul(x ^ (x >>> 15), 2_246_822_519) + 0x9e3779b9) >>> 0;
    out += x.toString(36);
  }
  return out.slice(0, n);
}
