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

  it('handles CRLF, and refuses a last record the input ends inside as unterminated_record', () => {
    const recs = splitCsv('a,b\r\n"c","d"\r\ne,f');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['a', 'b'], raw: 'a,b' },
      { line: 2, fields: ['c', 'd'], raw: '"c","d"' },
      { line: 3, reason: 'unterminated_record' },
    ]);
    expect(recs[2]).toMatchObject({ raw: 'e,f', detail: expect.stringMatching(/input ended in the middle/) });
    // Last field cut right after a quote: the CSV quotes balance, but the record is still refused.
    const cut = splitCsv('"a","k=""v"",x=""w"""\n"b","k=""v"",x=""w"');
    expect(summary(cut)).toEqual([
      { line: 1, fields: ['a', 'k="v",x="w"'], raw: '"a","k=""v"",x=""w"""' },
      { line: 2, reason: 'unterminated_record' },
    ]);
    expect(cut[1]!.raw).toBe('"b","k=""v"",x=""w"');
    // A record spanning lines that the input ends inside is one error with all of its text.
    expect(summary(splitCsv('"multi\nline",x'))).toEqual([{ line: 1, reason: 'unterminated_record' }]);
    // Terminated last records are records, whatever the terminator.
    for (const end of ['\n', '\r\n', '\r']) {
      expect(summary(splitCsv(`a,b${end}`)), JSON.stringify(end)).toEqual([
        { line: 1, fields: ['a', 'b'], raw: 'a,b' },
      ]);
    }
  });

  it('treats a lone CR as a line terminator: rows are never merged', () => {
    const recs = splitCsv('h1,h2\r"a","1"\rb,2\r\rc,"3"\r\nd,4\n');
    expect(summary(recs)).toEqual([
      { line: 1, fields: ['h1', 'h2'], raw: 'h1,h2' },
      { line: 2, fields: ['a', '1'], raw: '"a","1"' },
      { line: 3, fields: ['b', '2'], raw: 'b,2' },
      { line: 5, fields: ['c', '3'], raw: 'c,"3"' },
      { line: 6, fields: ['d', '4'], raw: 'd,4' },
    ]);
    // Inside quotes a CR is data, and counts as a line break for line numbers.
    expect(summary(splitCsv('"x\ry",1\rz,2\r'))).toEqual([
      { line: 1, fields: ['x\ry', '1'], raw: '"x\ry",1' },
      { line: 3, fields: ['z', '2'], raw: 'z,2' },
    ]);
    // A CR-only input larger than the record limit is still many small records.
    const big = Array.from({ length: 3000 }, (_, i) => `r${i},${i}`).join('\r') + '\r';
    const many = splitAt(Buffer.from(big), [1000, 20_000], { maxRecordBytes: 1024, maxFieldBytes: 512 });
    expect(many).toHaveLength(3000);
    expect(many.every((r, i) => r.ok && r.line === i + 1 && r.fields[1] === String(i))).toBe(true);
    // Bad UTF-8 is pinned to its CR-terminated line only.
    const bad = splitCsv(
      Buffer.concat([Buffer.from('a,1\rb,'), Buffer.from([0xff]), Buffer.from('\rc,3\r')]),
    );
    expect(summary(bad)).toEqual([
      { line: 1, fields: ['a', '1'], raw: 'a,1' },
      { line: 2, reason: 'bad_utf8' },
      { line: 3, fields: ['c', '3'], raw: 'c,3' },
    ]);
  });

  it('drops the incomplete trailing record on abort(), keeping every complete one', () => {
    const s = new CsvRecordSplitter();
    const out = [...s.push('a,1\nb,2\n"c","par'), ...s.push('tial')];
    s.abort();
    expect(summary(out)).toEqual([
      { line: 1, fields: ['a', '1'], raw: 'a,1' },
      { line: 2, fields: ['b', '2'], raw: 'b,2' },
    ]);
    expect(s.end()).toEqual([]);
    expect(() => s.push('x')).toThrow(/after end/);
    // Cut inside a quoted field that spans lines: nothing is reported either.
    const q = new CsvRecordSplitter();
    expect(summary(q.push('a,1\n"open\nstill open\n'))).toEqual([
      { line: 1, fields: ['a', '1'], raw: 'a,1' },
    ]);
    q.abort();
    expect(q.end()).toEqual([]);
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
      'cr,"only"\r' +
      '\r' +
      '"quoted\rcr",z\r\n' +
      'last,"🎉 emoji","end"\r';
    const input = Buffer.from(text, 'utf8');
    const whole = summary(splitAt(input, []));
    expect(whole).toHaveLength(8);
    expect(whole[5]).toEqual({ line: 8, fields: ['cr', 'only'], raw: 'cr,"only"' });
    expect(whole[6]).toEqual({ line: 10, fields: ['quoted\rcr', 'z'], raw: '"quoted\rcr",z' });
    expect(whole[7]).toEqual({ line: 12, fields: ['last', '🎉 emoji', 'end'], raw: 'last,"🎉 emoji","end"' });
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
