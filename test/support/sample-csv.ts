/** Reads the bundled DCGM sample independently of the pipeline's parser, to check API answers. */
import { readFileSync } from 'node:fs';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';

export interface CsvRow {
  timestamp: string;
  metric: string;
  gpuId: string;
  uuid: string;
  hostname: string;
  value: number;
}

/** Every data row of the bundled sample (every field there is quoted and `","` only separates fields). */
export function readSampleRows(path = bundledSamplePath()): CsvRow[] {
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n').slice(1);
  return lines.map((line) => {
    const f = line.slice(1).split('","');
    return {
      timestamp: f[0]!,
      metric: f[1]!,
      gpuId: f[2]!,
      uuid: f[4]!,
      hostname: f[6]!,
      value: Number(f[10]),
    };
  });
}
