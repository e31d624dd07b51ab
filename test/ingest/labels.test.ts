// Unit tests of the strict labels_raw parser.
import { describe, expect, it } from 'vitest';
import { parseLabels } from '../../src/ingest/labels.js';

/** The labels of a well-formed label set (fails the test otherwise). */
function labelsOf(raw: string): Record<string, string> {
  const r = parseLabels(raw);
  if (!r.ok) throw new Error(`refused ${JSON.stringify(raw)}: ${r.detail}`);
  return r.labels;
}

describe('parseLabels', () => {
  it('parses the DCGM labels_raw form (after CSV unquoting)', () => {
    const raw =
      'DCGM_FI_DRIVER_VERSION="535.129.03",Hostname="mtv5-dgx1-hgpu-031",UUID="GPU-5fd4f087-86f3-7a43-b711-4771313afc50",' +
      '__name__="DCGM_FI_DEV_GPU_UTIL",device="nvidia0",gpu="0",instance="mtv5-dgx1-hgpu-031:9400",job="dgx_dcgm_exporter",' +
      'modelName="NVIDIA H100 80GB HBM3"';
    expect(parseLabels(raw)).toEqual({
      ok: true,
      labels: {
        DCGM_FI_DRIVER_VERSION: '535.129.03',
        Hostname: 'mtv5-dgx1-hgpu-031',
        UUID: 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50',
        __name__: 'DCGM_FI_DEV_GPU_UTIL',
        device: 'nvidia0',
        gpu: '0',
        instance: 'mtv5-dgx1-hgpu-031:9400',
        job: 'dgx_dcgm_exporter',
        modelName: 'NVIDIA H100 80GB HBM3',
      },
    });
  });

  it('accepts empty input, commas and = inside values, escapes, spaces, braces and unquoted values', () => {
    expect(labelsOf('')).toEqual({});
    expect(labelsOf('{}')).toEqual({});
    expect(labelsOf('a="x,y=z", b="q\\"uote\\\\ \\n"')).toEqual({ a: 'x,y=z', b: 'q"uote\\ \n' });
    expect(labelsOf('{pod="p-1",namespace="ml"}')).toEqual({ pod: 'p-1', namespace: 'ml' });
    expect(labelsOf('k=v,k2=v2')).toEqual({ k: 'v', k2: 'v2' });
    expect(labelsOf(' a = "1" , b="" ,')).toEqual({ a: '1', b: '' });
  });

  it('keeps a __proto__ label as an own property', () => {
    const labels = labelsOf('__proto__="x",a="1"');
    expect(Object.keys(labels)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
  });

  it('refuses a malformed label set as a whole, saying what and where', () => {
    const cases: [string, RegExp, number][] = [
      ['a="1",trailing', /label "trailing" has no "="/, 14],
      ['a="unterminated', /value of label "a" is not closed/, 2],
      ['a="1",b="cut\\', /value of label "b" is not closed/, 8],
      ['a="1"junk', /unexpected "j" after the value of label "a"/, 5],
      ['a="1",a="2"', /label "a" appears twice/, 6],
      ['a=b"c', /unexpected "\\"" in the unquoted value of label "a"/, 3],
      ['a="1",,b="2"', /expected a label name, found ","/, 6],
      ['="1"', /expected a label name, found "="/, 0],
      ['{a="1"', /"\{" is not closed by "\}"/, 0],
      ['a="1"}', /unexpected "}" after the value of label "a"/, 5],
      ['gpu="0",Hostname="', /value of label "Hostname" is not closed/, 17],
      ['gpu="0",Hostname=', /label "Hostname" has no value after "="/, 17],
      ['a=,b="1"', /label "a" has no value after "="/, 2],
    ];
    for (const [raw, detail, offset] of cases) {
      const r = parseLabels(raw);
      expect(r, raw).toMatchObject({ ok: false, offset });
      if (!r.ok) expect(r.detail, raw).toMatch(detail);
    }
  });
});
