import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExpositionParser, type ExpositionOptions } from '../../src/ingest/exposition.js';
import type { RowResult } from '../../src/ingest/validate.js';

const NOW = Date.UTC(2025, 6, 18, 21, 0, 0);

function run(bytes: Buffer, cuts: number[], options: Partial<ExpositionOptions> = {}) {
  const p = new ExpositionParser({
    source: 'p',
    clusterId: 'c',
    scrapeStartMs: NOW,
    now: () => NOW,
    ...options,
  });
  const rows: RowResult[] = [];
  let at = 0;
  for (const c of [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b)) {
    rows.push(...p.push(bytes.subarray(at, c)));
    at = c;
  }
  rows.push(...p.push(bytes.subarray(at)), ...p.end());
  return { rows, p };
}

// Lines built from pieces that hit every branch: good and broken series, values, timestamps, comments.
const piece = fc.constantFrom(
  'DCGM_FI_DEV_GPU_UTIL',
  'go_gc',
  '{gpu="0",UUID="GPU-1",Hostname="h"}',
  '{gpu="1",UUID="GPU-2",device="nvidia1",Hostname="h",pod="p\\"q"}',
  '{gpu="x",UUID="u"}',
  '{gpu="0"',
  '{a="\\z"}',
  ' ',
  '\t',
  ' 42',
  ' 7.5',
  ' NaN',
  ' +Inf',
  ' 1752871354123',
  ' -1',
  '# HELP DCGM_FI_DEV_GPU_UTIL util',
  '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
  '# TYPE x bogus',
  '# EOF',
  '#',
  '\r',
  '"',
  '\\',
  'é',
  '\u0000',
);
const text = fc
  .array(
    fc.array(piece, { maxLength: 6 }).map((p) => p.join('')),
    { maxLength: 25 },
  )
  .map((lines) => lines.join('\n'));
const withBadBytes = fc
  .tuple(text, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 3 }))
  .map(([t, bad]) => {
    const b = Buffer.from(t, 'utf8');
    const parts: Buffer[] = [b];
    for (const [at, byte] of bad) {
      const whole = Buffer.concat(parts);
      const k = at % (whole.length + 1);
      parts.splice(0, parts.length, whole.subarray(0, k), Buffer.from([byte]), whole.subarray(k));
    }
    return Buffer.concat(parts);
  });
const format = fc.constantFrom<'text' | 'openmetrics'>('text', 'openmetrics');

describe('exposition parser properties', () => {
  it('arbitrary bytes never throw', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        format,
        (bytes, cuts, f) => {
          run(Buffer.from(bytes), cuts, { format: f, maxLineBytes: 64 });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('chunk boundaries anywhere give identical results', () => {
    fc.assert(
      fc.property(
        withBadBytes,
        fc.array(fc.nat(), { maxLength: 8 }),
        format,
        fc.constantFrom(40, 65536),
        (bytes, cuts, f, max) => {
          const whole = run(bytes, [], { format: f, maxLineBytes: max });
          const cut = run(bytes, cuts, { format: f, maxLineBytes: max });
          expect(cut.rows).toEqual(whole.rows);
          expect(cut.p.summary()).toEqual(whole.p.summary());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('every line is a sample, a skipped series, a comment, blank or one dead letter', () => {
    fc.assert(
      fc.property(withBadBytes, format, fc.constantFrom(40, 65536), (bytes, f, max) => {
        const { rows, p } = run(bytes, [], { format: f, maxLineBytes: max });
        const s = p.summary();
        const lineDead = rows.filter((r) => !r.ok && r.deadLetter.reason !== 'missing_eof').length;
        const physical =
          bytes.length === 0
            ? 0
            : bytes.toString('latin1').split('\n').length - (bytes[bytes.length - 1] === 10 ? 1 : 0);
        expect(s.lines).toBe(physical);
        expect(s.samples + s.skipped + s.comments + s.blank + lineDead).toBe(s.lines);
        expect(rows.filter((r) => r.ok)).toHaveLength(s.samples);
        expect(rows.length - s.samples).toBe(s.deadLetters);
        // Lines are reported in order, each at most once.
        const lines = rows.map((r) => (r.ok ? r.line : r.deadLetter.line));
        expect(lines).toEqual([...lines].sort((a, b) => a - b));
        expect(new Set(lines).size).toBe(lines.length);
      }),
      { numRuns: 300 },
    );
  });
});
