/**
 * The SQLite store's chunk format round-trips times and values exactly (random and edge cases), and
 * costs what it should on steady scrapes.
 */
import { describe, expect, it } from 'vitest';
import { decodeChunk, encodeChunk } from '../../src/adapters/sqlite/chunk-codec.js';
import { prng } from '../support/hostile-clients.js';

const bits = (v: number): string => Buffer.from(new Float64Array([v]).buffer).toString('hex');

function roundTrip(ts: number[], values: number[]): Uint8Array {
  const data = encodeChunk(ts, values);
  const back = decodeChunk(data, ts.length);
  expect(back.ts).toEqual(ts);
  expect(back.values.map(bits)).toEqual(values.map(bits));
  return data;
}

describe('SQLite chunk codec', () => {
  it('round-trips edge values bit for bit, and times with fractions, before 1970 and far ahead', () => {
    const values = [
      0,
      -0,
      5e-324,
      -5e-324,
      1e308,
      -1e308,
      0.1,
      1 / 3,
      123456789.12345679,
      2 ** 53,
      -7,
      -7,
      42,
    ];
    const ts = [
      -62_135_596_800_000,
      -1,
      0,
      0.001,
      1.5,
      1_752_871_354_000.123,
      1_752_871_354_001,
      9e12 + 0.456,
    ];
    roundTrip(ts, values.slice(0, ts.length));
    roundTrip([-1000, -1, 0, 1, 1000], [1, 2, 3, 4, 5]);
    roundTrip([253_402_300_799_999], [Number.MAX_VALUE]);
    roundTrip([-62_135_596_800_000, 253_402_300_799_999], [1, 2]); // a delta past 2^50: float64 times
  });

  it('round-trips 300 random chunks of scrape-like and arbitrary samples', () => {
    const next = prng(18);
    for (let c = 0; c < 300; c++) {
      const n = 1 + Math.floor(next() * 400);
      const ts: number[] = [];
      let t = Math.floor((next() - 0.3) * 4e12);
      const step = [1000, 15_000, 30_000, 1][c % 4]!;
      for (let i = 0; i < n; i++) {
        t += step + (c % 3 === 0 ? Math.floor(next() * 50) : 0) + (c % 7 === 0 ? next() : 0);
        ts.push(t);
      }
      const values = ts.map((_, i) => {
        switch (c % 5) {
          case 0:
            return Math.round(next() * 10_000) / 100; // two decimals
          case 1:
            return i % 10 === 0 ? next() : 1410; // mostly repeats
          case 2:
            return (next() - 0.5) * 10 ** Math.floor(next() * 600 - 300);
          case 3:
            return Math.floor(next() * 2 ** 53);
          default:
            return new Float64Array(new Uint32Array([next() * 2 ** 32, next() * 2 ** 32]).buffer)[0]!;
        }
      });
      roundTrip(
        ts,
        values.map((v) => (Number.isNaN(v) ? 0 : v)),
      );
    }
  });

  it('costs about a byte a sample for steady scrapes of a repeated value', () => {
    const ts = Array.from({ length: 720 }, (_, i) => 1_752_871_350_000 + i * 30_000);
    const data = roundTrip(
      ts,
      ts.map(() => 1410),
    );
    // 1 flag + 8 first time + 720 headers + 719 varints (the first delta takes 3 bytes) + 8 value bytes at most
    expect(data.length).toBeLessThanOrEqual(1 + 8 + 3 + 719 + 720 + 8);
  });

  it('refuses an empty chunk, and bytes that end early or go on past the samples', () => {
    expect(() => encodeChunk([], [])).toThrow(RangeError);
    const data = encodeChunk([1, 2, 3], [1, 2, 3]);
    expect(() => decodeChunk(data.subarray(0, data.length - 1), 3)).toThrow(RangeError);
    expect(() => decodeChunk(data, 2)).toThrow(RangeError);
  });
});
