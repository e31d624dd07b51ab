// Unit tests of the labels_raw parser.
import { describe, expect, it } from 'vitest';
import { parseLabels } from '../../src/ingest/labels.js';

describe('parseLabels', () => {
  it('parses the DCGM labels_raw form (after CSV unquoting)', () => {
    const raw =
      'DCGM_FI_DRIVER_VERSION="535.129.03",Hostname="mtv5-dgx1-hgpu-031",UUID="GPU-5fd4f087-86f3-7a43-b711-4771313afc50",' +
      '__name__="DCGM_FI_DEV_GPU_UTIL",device="nvidia0",gpu="0",instance="mtv5-dgx1-hgpu-031:9400",job="dgx_dcgm_exporter",' +
      'modelName="NVIDIA H100 80GB HBM3"';
    expect(parseLabels(raw)).toEqual({
      DCGM_FI_DRIVER_VERSION: '535.129.03',
      Hostname: 'mtv5-dgx1-hgpu-031',
      UUID: 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50',
      __name__: 'DCGM_FI_DEV_GPU_UTIL',
      device: 'nvidia0',
      gpu: '0',
      instance: 'mtv5-dgx1-hgpu-031:9400',
      job: 'dgx_dcgm_exporter',
      modelName: 'NVIDIA H100 80GB HBM3',
    });
  });

  it('tolerates empty input, commas and = inside values, escapes, spaces, braces and unquoted values', () => {
    expect(parseLabels('')).toEqual({});
    expect(parseLabels('a="x,y=z", b="q\\"uote\\\\ \\n"')).toEqual({ a: 'x,y=z', b: 'q"uote\\ \n' });
    expect(parseLabels('{pod="p-1",namespace="ml"}')).toEqual({ pod: 'p-1', namespace: 'ml' });
    expect(parseLabels('k=v,k2=v2')).toEqual({ k: 'v', k2: 'v2' });
    expect(parseLabels('a="1",trailing')).toEqual({ a: '1' });
    expect(parseLabels('a="unterminated')).toEqual({ a: 'unterminated' });
  });
});
