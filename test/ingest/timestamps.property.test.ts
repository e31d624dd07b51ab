// Property-based tests of the RFC 3339 parser: every instant of years 0001-9999 round-trips through
// its ISO string (with or without an offset), years 0000-0099 are not moved to the 1900s, and
// arbitrary text never throws.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, parseRfc3339 } from '../../src/ingest/validate.js';

const RUNS = { numRuns: 1000, interruptAfterTimeLimit: 4000 };
/** Start of year 0100 (Date.UTC is right from year 100 on). */
const YEAR_100_MS = Date.UTC(100, 0, 1);
/** Any instant the store holds, one time in three in years 0001-0099. */
const instant = fc.oneof(
  { arbitrary: fc.integer({ min: MIN_TIMESTAMP_MS, max: MAX_TIMESTAMP_MS }), weight: 2 },
  { arbitrary: fc.integer({ min: MIN_TIMESTAMP_MS, max: YEAR_100_MS - 1 }), weight: 1 },
);

describe('parseRfc3339 properties', () => {
  it('round-trips toISOString() for every instant of years 0001-9999', () => {
    fc.assert(
      fc.property(instant, (ms) => {
        expect(parseRfc3339(new Date(ms).toISOString())).toBe(ms);
      }),
      RUNS,
    );
  });

  it('gives the same instant written with any offset, separator and case', () => {
    const offsetMin = fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 });
    fc.assert(
      fc.property(instant, offsetMin, fc.constantFrom('T', 't', ' '), (ms, off, sep) => {
        const local = new Date(ms + off * 60_000);
        fc.pre(local.getUTCFullYear() >= 0 && local.getUTCFullYear() <= 9999);
        const abs = Math.abs(off);
        const zone = `${off < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        const text = local.toISOString().slice(0, 23).replace('T', sep) + zone;
        expect(parseRfc3339(text)).toBe(ms);
      }),
      RUNS,
    );
  });

  it('reads years 0000-0099 literally', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 365 * 86_400_000 - 1 }),
        (year, into) => {
          const start = new Date(0);
          start.setUTCFullYear(year, 0, 1);
          const ms = start.getTime() + into;
          fc.pre(new Date(ms).getUTCFullYear() === year);
          const iso = new Date(ms).toISOString();
          expect(parseRfc3339(iso)).toBe(ms);
          expect(new Date(parseRfc3339(iso)).getUTCFullYear()).toBe(year);
        },
      ),
      RUNS,
    );
  });

  it('never throws on arbitrary text and gives NaN or a whole number of ms', () => {
    const near = fc
      .tuple(instant, fc.integer({ min: 0, max: 24 }), fc.string({ maxLength: 3 }))
      .map(([ms, at, junk]) => {
        const iso = new Date(ms).toISOString();
        return iso.slice(0, at) + junk + iso.slice(at + junk.length);
      });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), near), (text) => {
        const v = parseRfc3339(text);
        expect(Number.isNaN(v) || Number.isInteger(v)).toBe(true);
      }),
      RUNS,
    );
  });
});
