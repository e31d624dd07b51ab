// Property-based tests of the CSV record splitter: written records come back exactly, whatever the
// chunking and line terminators; arbitrary bytes never throw and respect the size limits; abort()
// yields exactly the records terminated before the stop; buffered state stays within the record limit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvRecordSplitter, type CsvRecord, type CsvSplitterOptions } from '../../src/ingest/csv-records.js';

/** Each property stops after this long on a slow machine (and passes if nothing failed so far). */
const TIME_LIMIT_MS = 4000;
const RUNS = { numRuns: 300, interruptAfterTimeLimit: TIME_LIMIT_MS };

/** Feed `input` cut at `cuts` (sorted offsets); collect every record, checking the buffered state. */
function splitAt(input: Buffer, cuts: number[], options: CsvSplitterOptions = {}): CsvRecord[] {
  const s = new CsvRecordSplitter(options);
  const limit = options.maxRecordBytes ?? 64 * 1024;
  const state = s as unknown as { pendingLength: number; carry: string };
  const out: CsvRecord[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(...s.push(input.subarray(from, cut)));
    // Memory bound: at most one partial record is held.
    expect(state.pendingLength).toBeLessThanOrEqual(limit);
    expect(state.carry.length).toBeLessThanOrEqual(limit);
    from = cut;
  }
  out.push(...s.end());
  return out;
}

/** Sorted cut offsets in [0, length] from arbitrary seeds. */
const cutsOf = (seeds: number[], length: number): number[] =>
  seeds.map((k) => k % (length + 1)).sort((a, b) => a - b);

/** Seeds of chunk cuts (a double in [0, 1) would cluster at the ends). */
const fractions = fc.array(fc.nat({ max: 1_000_000 }), { maxLength: 6 });

/** Characters that stress the splitter: separators, quotes, line breaks, multi-byte text. */
const fieldChar = fc.constantFrom('a', 'b', 'z', ' ', ',', '"', '\n', '\r', 'é', '日', '🎉', '=', '\t');
const field = fc.string({ unit: fieldChar, maxLength: 12 });
const terminator = fc.constantFrom('\n', '\r\n', '\r');

interface Written {
  bytes: Buffer;
  /** Expected records: fields and starting line. */
  expected: { line: number; fields: string[] }[];
  /** Offset of each record's terminator (its first byte). */
  terminatorAt: number[];
}

/** Line breaks (CRLF, CR, LF once each) in `s`. */
function lineBreaks(s: string): number {
  return (s.match(/\r\n|\r|\n/g) ?? []).length;
}

/** Write records as RFC 4180 CSV, quoting when needed (or when `quoteAll`). */
function write(records: { fields: string[]; term: string; quoteAll: boolean }[]): Written {
  let text = '';
  let line = 1;
  const expected: Written['expected'] = [];
  const terminatorAt: number[] = [];
  for (const r of records) {
    const cells = r.fields.map((f) =>
      r.quoteAll || f === '' || /[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f,
    );
    let body = cells.join(',');
    if (body === '') body = '""'; // an empty line is skipped, not a record
    expected.push({ line, fields: body === '""' && r.fields.length === 1 ? [''] : r.fields });
    text += body;
    terminatorAt.push(Buffer.byteLength(text));
    text += r.term;
    line += lineBreaks(body) + 1;
  }
  return { bytes: Buffer.from(text, 'utf8'), expected, terminatorAt };
}

const records = fc.array(
  fc.record({
    fields: fc.array(field, { minLength: 1, maxLength: 5 }),
    term: terminator,
    quoteAll: fc.boolean(),
  }),
  { maxLength: 12 },
);

const okSummary = (recs: CsvRecord[]): unknown[] =>
  recs.map((r) => (r.ok ? { line: r.line, fields: r.fields } : { line: r.line, reason: r.reason }));

describe('CsvRecordSplitter properties', () => {
  it('returns the written records exactly, whatever the chunking and line terminators', () => {
    fc.assert(
      fc.property(records, fractions, (recs, fs) => {
        const { bytes, expected } = write(recs);
        const whole = splitAt(bytes, []);
        expect(okSummary(whole)).toEqual(expected);
        expect(okSummary(splitAt(bytes, cutsOf(fs, bytes.length)))).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('refuses a last record without terminator as unterminated_record (never a record)', () => {
    fc.assert(
      fc.property(records, fractions, (recs, fs) => {
        fc.pre(recs.length > 0);
        const { bytes, expected, terminatorAt } = write(recs);
        const cut = bytes.subarray(0, terminatorAt[terminatorAt.length - 1]);
        const got = okSummary(splitAt(cut, cutsOf(fs, cut.length)));
        expect(got.slice(0, -1)).toEqual(expected.slice(0, -1));
        expect(got[got.length - 1]).toEqual({
          line: expected[expected.length - 1]!.line,
          reason: 'unterminated_record',
        });
      }),
      RUNS,
    );
  });

  it('on abort(), yields exactly the records whose terminator was read, and nothing for the tail', () => {
    fc.assert(
      fc.property(records, fractions, fc.nat({ max: 1_000_000 }), (recs, fs, at) => {
        const { bytes, expected, terminatorAt } = write(recs);
        const stop = at % (bytes.length + 1);
        const prefix = bytes.subarray(0, stop);
        const s = new CsvRecordSplitter();
        const out: CsvRecord[] = [];
        let from = 0;
        for (const cut of [...cutsOf(fs, prefix.length), prefix.length]) {
          out.push(...s.push(prefix.subarray(from, cut)));
          from = cut;
        }
        s.abort();
        const complete = terminatorAt.filter((t) => t < stop).length;
        expect(okSummary(out)).toEqual(expected.slice(0, complete));
        expect(s.end()).toEqual([]);
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary bytes, gives the same records for any chunking, and keeps the size limits', () => {
    const interesting = [
      0x22, 0x2c, 0x0a, 0x0d, 0x61, 0x20, 0xff, 0xc3, 0xa9, 0xe6, 0x97, 0xa5, 0xef, 0xbb, 0xbf,
    ];
    const byte = fc.oneof(fc.constantFrom(...interesting), fc.integer({ min: 0, max: 255 }));
    const options: CsvSplitterOptions = { maxRecordBytes: 48, maxFieldBytes: 16 };
    const reasons = new Set([
      'unterminated_quote',
      'malformed_quote',
      'oversized_field',
      'oversized_record',
      'bad_utf8',
      'unterminated_record',
    ]);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 200 }), fractions, (arr, fs) => {
        const bytes = Buffer.from(arr);
        const whole = splitAt(bytes, [], options);
        expect(splitAt(bytes, cutsOf(fs, bytes.length), options)).toEqual(whole);
        let line = 0;
        for (const r of whole) {
          expect(r.line).toBeGreaterThan(line);
          line = r.line;
          expect(r.raw.length).toBeLessThanOrEqual(1000);
          if (r.ok) {
            expect(Buffer.byteLength(r.raw)).toBeLessThanOrEqual(options.maxRecordBytes!);
            for (const f of r.fields)
              expect(Buffer.byteLength(f)).toBeLessThanOrEqual(options.maxFieldBytes!);
          } else {
            expect(reasons.has(r.reason)).toBe(true);
            expect(r.detail.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 500, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('holds at most one record of state while a giant line streams through', () => {
    const s = new CsvRecordSplitter({ maxRecordBytes: 1024, maxFieldBytes: 256 });
    const state = s as unknown as { pendingLength: number; carry: string };
    const out: CsvRecord[] = [];
    for (const piece of ['"quoted and never closed ', 'x,', 'y\r', 'z']) {
      for (let i = 0; i < 300; i++) {
        out.push(...s.push(piece.repeat(50)));
        expect(state.pendingLength).toBeLessThanOrEqual(1024);
        expect(state.carry.length).toBeLessThanOrEqual(1024);
      }
    }
    out.push(...s.push('\nok,1\n'), ...s.end());
    expect(out.length).toBeGreaterThan(0);
    expect(out[out.length - 1]).toMatchObject({ ok: true, fields: ['ok', '1'] });
  });
});
