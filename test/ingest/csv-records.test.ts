// Unit tests of the streaming RFC 4180 record splitter: quoting, line numbers, chunk boundaries, faults.
import { describe, expect, it } from 'vitest';
import { CsvRecordSplitter, splitCsv, unescapeField, type CsvRecord } from '../../src/ingest/csv-records.js';

/** Feed `input` cut at the given byte offsets; collect every record. */
function splitAt(input: Buffer, cuts: number[], options = {}): CsvRecord[] {
  const s = new CsvRecordSplitter(options);
  const out: CsvRecord[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(...s.push(input.subarray(from, cut)));
    from = cut;
  }
  out.push(...s.end());
  return out;
}

const summary = (records: CsvRecord[]): unknown[] =>
  records.map((r) =>
    r.ok ? { line: r.line, fields: r.fields, raw: r.raw } : { line: r.line, reason: r.reason },
  );

describe('CsvRecordSplitter', () => {
  it('splits quoted fields with doubled quotes, commas and newlines inside quotes', () => {
    const recs = splitCsv('a,"b ""x"", y","multi\nline"\n"1",2,""\n');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['a', 'b "x", y', 'multi\nline'], raw: 'a,"b ""x"", y","multi\nline"' },
      { line: 3, fields: ['1', '2', ''], raw: '"1",2,""' },
    ]);
  });

  it('handles CRLF and a last line without a line feed', () => {
    const recs = splitCsv('a,b\r\n"c","d"\r\ne,f');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['a', 'b'], raw: 'a,b' },
      { line: 2, fields: ['c', 'd'], raw: '"c","d"' },
      { line: 3, fields: ['e', 'f'], raw: 'e,f' },
    ]);
  });

  it('skips empty lines but counts them in line numbers', () => {
    const recs = splitCsv('a\n\n\r\nb\n');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['a'], raw: 'a' },
      { line: 4, fields: ['b'], raw: 'b' },
    ]);
  });

  it('strips a UTF-8 byte order mark at the start only', () => {
    const recs = splitCsv(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('h1,h2\nx,y\n')]));
    expect(recs.map((r) => r.ok && r.fields)).toEqual([
      ['h1', 'h2'],
      ['x', 'y'],
    ]);
  });

  it('gives the same records for every possible chunk boundary (two and three chunks)', () => {
    const text =
      'h1,h2,h3\r\n' +
      '"é日本",plain,"quote "" inside"\n' +
      '"line\nbreak","crlf\r\ninside",x\r\n' +
      'a,"b,c",\n' +
      '"bad"x,1,2\n' +
      'last,"🎉 emoji","end"';
    const input = Buffer.from(text, 'utf8');
    const whole = summary(splitAt(input, []));
    expect(whole).toHaveLength(6);
    expect(whole[5]).toEqual({ line: 8, fields: ['last', '🎉 emoji', 'end'], raw: 'last,"🎉 emoji","end"' });
    for (let cut = 0; cut <= input.length; cut++) {
      expect(summary(splitAt(input, [cut]))).toEqual(whole);
    }
    for (let a = 0; a <= input.length; a += 3) {
      for (let b = a; b <= input.length; b += 7) expect(summary(splitAt(input, [a, b]))).toEqual(whole);
    }
    // One byte at a time.
    const cuts = Array.from({ length: input.length }, (_, i) => i);
    expect(summary(splitAt(input, cuts))).toEqual(whole);
  });

  it('reports an unterminated quote and resumes at the next line', () => {
    const recs = splitCsv('a,b\n"x,"open\n"next","row"\nc,d\n');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['a', 'b'], raw: 'a,b' },
      { line: 2, reason: 'malformed_quote' },
      { line: 3, fields: ['next', 'row'], raw: '"next","row"' },
      { line: 4, fields: ['c', 'd'], raw: 'c,d' },
    ]);
    const truncated = splitCsv('"a","b=""1\n"c","d"\n');
    expect(summary(truncated)).toEqual([
      { line: 1, reason: 'unterminated_quote' },
      { line: 2, fields: ['c', 'd'], raw: '"c","d"' },
    ]);
    const atEnd = splitCsv('"a","b"\n"c","never closed');
    expect(summary(atEnd)).toEqual([
      { line: 1, fields: ['a', 'b'], raw: '"a","b"' },
      { line: 2, reason: 'unterminated_quote' },
    ]);
  });

  it('bounds an unterminated quote that swallows many lines by the field size', () => {
    const body = Array.from({ length: 200 }, (_, i) => `row${i},value${i}`).join('\n');
    const recs = splitCsv(`x,"open\n${body}\n`, { maxFieldBytes: 256, maxRecordBytes: 1024 });
    expect(recs[0]).toMatchObject({ ok: false, line: 1, reason: 'unterminated_quote' });
    // Everything after the broken line is recovered.
    expect(recs.slice(1).map((r) => r.ok && r.fields[0])).toEqual(
      Array.from({ length: 200 }, (_, i) => `row${i}`),
    );
    expect(recs[200]).toMatchObject({ line: 201 });
  });

  it('refuses an oversized field and an oversized line without line feed, then resynchronises', () => {
    const big = 'y'.repeat(5000);
    const recs = splitCsv(`a,"${big}"\nb,${big}\nc,d\n`);
    expect(summary(recs)).toEqual([
      { line: 1, reason: 'oversized_field' },
      { line: 2, reason: 'oversized_field' },
      { line: 3, fields: ['c', 'd'], raw: 'c,d' },
    ]);
    // A 200 KiB line fed in small chunks: memory stays bounded, the next line is read.
    const s = new CsvRecordSplitter({ maxRecordBytes: 1024, maxFieldBytes: 512 });
    const out: CsvRecord[] = [];
    for (let i = 0; i < 200; i++) out.push(...s.push('z'.repeat(1024)));
    out.push(...s.push('\nok,1\n'), ...s.end());
    expect(summary(out)).toEqual([
      { line: 1, reason: 'oversized_field' },
      { line: 2, fields: ['ok', '1'], raw: 'ok,1' },
    ]);
  });

  it('reports bad UTF-8 on its own line only', () => {
    const input = Buffer.concat([
      Buffer.from('a,b\n"x",y'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('\nc,"é"\n'),
    ]);
    for (let cut = 0; cut <= input.length; cut++) {
      const recs = splitAt(input, [cut]);
      expect(summary(recs)).toEqual([
        { line: 1, fields: ['a', 'b'], raw: 'a,b' },
        { line: 2, reason: 'bad_utf8' },
        { line: 3, fields: ['c', 'é'], raw: 'c,"é"' },
      ]);
      expect(recs[1]!.raw).toBe('"x",y\ufffd\ufffd');
    }
  });

  it('defers unescaping with unescape: false and flags the fields', () => {
    const [r] = splitCsv('"a""b",c,"d"\n', { unescape: false });
    expect(r).toMatchObject({ ok: true, fields: ['a""b', 'c', 'd'], escaped: 0b1 });
    expect(unescapeField('a""b')).toBe('a"b');
  });

  it('refuses push() after end()', () => {
    const s = new CsvRecordSplitter();
    s.end();
    expect(() => s.push('x')).toThrow(/after end/);
  });
});
