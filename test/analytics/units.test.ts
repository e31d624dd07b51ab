// The small pieces of analytics: range segments of the rollup path, MIG fractions, prices, CSV.
import { describe, expect, it } from 'vitest';
import { toCsv } from '../../src/analytics/csv.js';
import { gpuFraction } from '../../src/analytics/fields.js';
import { parsePrices, priceOf } from '../../src/analytics/prices.js';
import { segments } from '../../src/analytics/scan.js';
import { sample } from '../support/samples.js';

const H = 3_600_000;
const M = 60_000;

describe('segments', () => {
  it('cuts a range into raw edges, 1m partial hours and whole hours, covering it exactly once', () => {
    const start = 10 * H + 17 * M + 5_000;
    const end = 14 * H + 3 * M + 9_000;
    const s = segments(start, end, 'total');
    expect(s).toEqual([
      { from: start, to: 10 * H + 18 * M, resolution: 'raw' },
      { from: 10 * H + 18 * M, to: 11 * H, resolution: '1m' },
      { from: 11 * H, to: 14 * H, resolution: '1h' },
      { from: 14 * H, to: 14 * H + 3 * M, resolution: '1m' },
      { from: 14 * H + 3 * M, to: end, resolution: 'raw' },
    ]);
    for (let i = 1; i < s.length; i++) expect(s[i]!.from).toBe(s[i - 1]!.to);
    expect(segments(start, end, 'minute').map((x) => x.resolution)).toEqual(['raw', '1m', 'raw']);
    expect(segments(start, start + 30_000, 'total')).toEqual([
      { from: start, to: start + 30_000, resolution: 'raw' },
    ]);
    expect(segments(H, 3 * H, 'total')).toEqual([{ from: H, to: 3 * H, resolution: '1h' }]);
  });
});

describe('gpuFraction', () => {
  it('counts a MIG instance as N/7 of its GPU, a whole GPU as 1', () => {
    expect(gpuFraction(sample({ labels: {} }))).toBe(1);
    expect(gpuFraction(sample({ labels: { GPU_I_ID: '3', GPU_I_PROFILE: '1g.10gb' } }))).toBeCloseTo(
      1 / 7,
      15,
    );
    expect(gpuFraction(sample({ labels: { GPU_I_ID: '1', GPU_I_PROFILE: '3g.40gb' } }))).toBeCloseTo(
      3 / 7,
      15,
    );
    expect(gpuFraction(sample({ labels: { GPU_I_ID: '0', GPU_I_PROFILE: '7g.80gb' } }))).toBe(1);
    expect(gpuFraction(sample({ labels: { GPU_I_ID: '2' } }))).toBeCloseTo(1 / 7, 15);
  });
});

describe('prices', () => {
  it('takes the longest key the model name contains, else the default', () => {
    const t = parsePrices('H100=2.5, A100=1.2, A100-SXM4-80GB=1.5, default=1');
    expect(priceOf(t, 'NVIDIA H100 80GB HBM3')).toBe(2.5);
    expect(priceOf(t, 'NVIDIA A100-SXM4-80GB')).toBe(1.5);
    expect(priceOf(t, 'NVIDIA A100-SXM4-40GB')).toBe(1.2);
    expect(priceOf(t, 'Tesla T4')).toBe(1);
    expect(priceOf(parsePrices(''), 'Tesla T4')).toBe(0);
  });

  it('refuses a malformed table', () => {
    for (const text of ['H100', 'H100=-1', '=2', 'H100=abc'])
      expect(() => parsePrices(text), text).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('toCsv', () => {
  it('writes RFC 4180 with a header and quotes only where needed', () => {
    expect(toCsv(['key', 'n'], [{ key: 'a,b', n: 1 }, { key: 'say "hi"', n: 2.5 }, { key: 'plain' }])).toBe(
      'key,n\r\n"a,b",1\r\n"say ""hi""",2.5\r\nplain,\r\n',
    );
  });
});
