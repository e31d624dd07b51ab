// Query-parameter parsing: strict RFC 3339, inclusive ranges with inward rounding, metric lists.
import { describe, expect, it } from 'vitest';
import { parseMetricList, parseRfc3339, parseTimeRange } from '../../src/api/params.js';
import { NexusError } from '../../src/errors.js';

function parameterOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    const e = error as NexusError;
    expect(e.code).toBe('BAD_REQUEST');
    return e.details.parameter as string;
  }
  throw new Error('expected a BAD_REQUEST');
}

describe('parseRfc3339', () => {
  it('parses UTC and offset forms to the same instant', () => {
    const z = parseRfc3339('2025-07-18T20:42:34Z');
    expect(z).toEqual({ ms: Date.UTC(2025, 6, 18, 20, 42, 34), subMsNanos: 0 });
    expect(parseRfc3339('2025-07-18T22:42:34+02:00')?.ms).toBe(z?.ms);
    expect(parseRfc3339('2025-07-18T13:12:34-07:30')?.ms).toBe(z?.ms);
    expect(parseRfc3339('2025-07-18t20:42:34z')?.ms).toBe(z?.ms);
    expect(parseRfc3339('2025-07-18 20:42:34Z')?.ms).toBe(z?.ms);
  });

  it('keeps milliseconds and flags finer digits', () => {
    expect(parseRfc3339('2025-07-18T20:42:34.123Z')).toEqual({
      ms: Date.UTC(2025, 6, 18, 20, 42, 34, 123),
      subMsNanos: 0,
    });
    expect(parseRfc3339('2025-07-18T20:42:34.5Z')?.ms).toBe(Date.UTC(2025, 6, 18, 20, 42, 34, 500));
    expect(parseRfc3339('2025-07-18T20:42:34.123000Z')?.subMsNanos).toBe(0);
    expect(parseRfc3339('2025-07-18T20:42:34.123456789Z')?.subMsNanos).toBe(456789);
    expect(parseRfc3339('2025-07-18T20:42:34.123400Z')).toEqual({
      ms: Date.UTC(2025, 6, 18, 20, 42, 34, 123),
      subMsNanos: 400_000,
    });
  });

  it('handles leap years and years before 100', () => {
    expect(parseRfc3339('2024-02-29T00:00:00Z')?.ms).toBe(Date.UTC(2024, 1, 29));
    expect(parseRfc3339('2000-02-29T00:00:00Z')).toBeDefined();
    expect(parseRfc3339('0050-01-01T00:00:00Z')?.ms).toBe(new Date('0050-01-01T00:00:00Z').getTime());
  });

  it.each([
    '2025-07-18',
    '2025-07-18T20:42:34',
    '2025-07-18T20:42Z',
    '1752871354',
    'July 18, 2025',
    '2025-13-01T00:00:00Z',
    '2025-00-01T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2025-04-31T00:00:00Z',
    '2025-07-18T24:00:00Z',
    '2025-07-18T20:60:00Z',
    '2025-07-18T20:42:61Z',
    '2025-07-18T20:42:34+24:00',
    '2025-07-18T20:42:34.Z',
    ' 2025-07-18T20:42:34Z',
    '2025-07-18T20:42:34Z ',
  ])('refuses %j', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe('parseTimeRange', () => {
  it('returns inclusive bounds, rounding sub-millisecond digits inward', () => {
    expect(parseTimeRange('2025-07-18T20:42:34Z', '2025-07-18T20:42:36Z')).toEqual({
      startMs: Date.UTC(2025, 6, 18, 20, 42, 34),
      endMs: Date.UTC(2025, 6, 18, 20, 42, 36),
    });
    expect(parseTimeRange('2025-07-18T20:42:34.0001Z', '2025-07-18T20:42:34.0009Z')).toEqual({
      startMs: Date.UTC(2025, 6, 18, 20, 42, 34) + 1,
      endMs: Date.UTC(2025, 6, 18, 20, 42, 34),
    });
    expect(parseTimeRange(undefined, undefined)).toEqual({});
    expect(parameterOf(() => parseTimeRange('2025-07-18T20:42:34.0009Z', '2025-07-18T20:42:34.0001Z'))).toBe(
      'start_time',
    );
  });

  it('accepts start equal to end', () => {
    const t = '2025-07-18T20:42:34Z';
    expect(parseTimeRange(t, t)).toEqual({ startMs: Date.parse(t), endMs: Date.parse(t) });
  });

  it('names the bad parameter', () => {
    expect(parameterOf(() => parseTimeRange('yesterday', undefined))).toBe('start_time');
    expect(parameterOf(() => parseTimeRange(undefined, '2025-02-30T00:00:00Z'))).toBe('end_time');
    expect(parameterOf(() => parseTimeRange('2025-07-18T20:42:35Z', '2025-07-18T20:42:34Z'))).toBe(
      'start_time',
    );
  });
});

describe('parseMetricList', () => {
  it('splits commas, trims, drops duplicates, and keeps order', () => {
    expect(parseMetricList(['DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_GPU_UTIL'])).toEqual([
      'DCGM_FI_DEV_GPU_UTIL',
      'DCGM_FI_DEV_GPU_TEMP',
    ]);
    expect(parseMetricList(undefined)).toBeUndefined();
  });

  it('refuses empty lists and odd names, naming metric', () => {
    expect(parameterOf(() => parseMetricList([' , ']))).toBe('metric');
    expect(parameterOf(() => parseMetricList(["x' OR 1=1"]))).toBe('metric');
  });
});
