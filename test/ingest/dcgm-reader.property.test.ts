// Property-based tests and a bounded fuzz loop over the whole DCGM reader: every row is either a
// sample or a dead letter with the expected reason, whatever the chunking and line terminators;
// input cut short never yields a sample for the cut row; an abort drops only the unfinished row;
// every sample is one the store can hold.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/domain/types.js';
import { hasCode } from '../../src/errors.js';
import { splitCsv } from '../../src/ingest/csv-records.js';
import { DcgmParser, type RowResult } from '../../src/ingest/dcgm-reader.js';
import {
  DEAD_LETTER_REASONS,
  MAX_IDENTITY_FIELD_BYTES,
  MAX_TIMESTAMP_MS,
  MIN_TIMESTAMP_MS,
} from '../../src/ingest/validate.js';

const NOW = Date.UTC(2025, 6, 19);
const TIME_LIMIT_MS = 4000;
const HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n';

/** Parse `input` cut at `cuts`; `stop: 'abort'` ends with abort() instead of end(). */
function parse(input: Buffer, cuts: number[], stop: 'end' | 'abort' = 'end'): RowResult[] {
  const p = new DcgmParser({ source: 'p.csv', clusterId: 'c', now: () => NOW });
  const out: RowResult[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(...p.push(input.subarray(from, cut)));
    from = cut;
  }
  if (stop === 'abort') p.abort();
  else out.push(...p.end());
  return out;
}

const cutsOf = (seeds: number[], length: number): number[] =>
  seeds.map((k) => k % (length + 1)).sort((a, b) => a - b);
const seeds = fc.array(fc.nat({ max: 1_000_000 }), { maxLength: 5 });

/** The sample's fields must be ones the store accepts. */
function expectStorable(s: Sample): void {
  expect(s.timestampMs).toBeGreaterThanOrEqual(MIN_TIMESTAMP_MS);
  expect(s.timestampMs).toBeLessThanOrEqual(Math.min(MAX_TIMESTAMP_MS, NOW + 24 * 3600 * 1000));
  expect(Number.isFinite(s.value)).toBe(true);
  for (const f of [
    s.hostname,
    s.metric,
    s.gpuId,
    s.uuid,
    s.device,
    s.modelName,
    s.container,
    s.pod,
    s.namespace,
  ]) {
    expect(Buffer.byteLength(f)).toBeLessThanOrEqual(MAX_IDENTITY_FIELD_BYTES);
  }
}

function expectWellFormed(results: RowResult[]): void {
  for (const r of results) {
    if (r.ok) expectStorable(r.sample);
    else {
      expect(Object.keys(DEAD_LETTER_REASONS)).toContain(r.deadLetter.reason);
      expect(r.deadLetter.raw.length).toBeLessThanOrEqual(1000);
      expect(r.deadLetter.detail.length).toBeGreaterThan(0);
    }
  }
}

/** One generated row: its bytes (without terminator) and what the reader must make of it. */
interface GenRow {
  bytes: Buffer;
  /** Expected dead-letter reason, or null for a sample. */
  reason: string | null;
  value: number;
  timestampMs: number;
}

type Mutation = { field?: string; to?: string; reason: string | null; special?: 'drop' | 'quote' | 'utf8' };
const MUTATIONS: Mutation[] = [
  { reason: null },
  { field: 'value', to: '-0.5', reason: null },
  { field: 'timestamp', to: '0001-01-01T00:00:00Z', reason: null },
  { field: 'timestamp', to: '0099-12-31T23:59:59.5+01:00', reason: null },
  { field: 'labels_raw', to: '', reason: null },
  { field: 'value', to: 'NaN', reason: 'non_finite_value' },
  { field: 'value', to: '1e999', reason: 'non_finite_value' },
  { field: 'value', to: 'abc', reason: 'non_numeric_value' },
  { field: 'value', to: '', reason: 'missing_field' },
  { field: 'timestamp', to: '0000-06-01T00:00:00Z', reason: 'timestamp_out_of_range' },
  { field: 'timestamp', to: '9999-12-31T23:59:59Z', reason: 'future_timestamp' },
  { field: 'timestamp', to: '2025-02-30T00:00:00Z', reason: 'bad_timestamp' },
  { field: 'Hostname', to: 'h'.repeat(MAX_IDENTITY_FIELD_BYTES + 1), reason: 'identity_field_too_long' },
  { field: 'metric_name', to: 'm'.repeat(4000), reason: 'identity_field_too_long' },
  { field: 'labels_raw', to: 'gpu="0",pod="p', reason: 'bad_labels' },
  { field: 'labels_raw', to: 'gpu="0",pod', reason: 'bad_labels' },
  { field: 'gpu_id', to: 'x', reason: 'bad_gpu_id' },
  { reason: 'column_count', special: 'drop' },
  { reason: 'malformed_quote', special: 'quote' },
  { reason: 'bad_utf8', special: 'utf8' },
];

function makeRow(index: number, mutation: Mutation, quoteAll: boolean): GenRow {
  const value = index + 0.25;
  const timestamp = new Date(Date.UTC(2025, 6, 18) + index * 1000).toISOString();
  const fields: Record<string, string> = {
    timestamp,
    metric_name: 'DCGM_FI_DEV_GPU_TEMP',
    gpu_id: String(index % 8),
    device: `nvidia${index % 8}`,
    uuid: `GPU-${index % 8}`,
    modelName: 'NVIDIA H100 80GB HBM3',
    Hostname: 'host, "one"',
    container: '',
    pod: 'p',
    namespace: 'ns',
    value: String(value),
    labels_raw: `gpu="${index % 8}",note="a, b"`,
  };
  if (mutation.field !== undefined) fields[mutation.field] = mutation.to!;
  let cells = Object.values(fields).map((f) =>
    quoteAll || /[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f,
  );
  if (mutation.special === 'drop') cells = cells.slice(0, 11);
  if (mutation.special === 'quote') cells[3] = '"nvidia"x';
  let bytes = Buffer.from(cells.join(','));
  if (mutation.special === 'utf8')
    bytes = Buffer.concat([bytes.subarray(0, 30), Buffer.from([0xff]), bytes.subarray(30)]);
  const good = mutation.reason === null;
  const tsText = fields.timestamp!;
  return {
    bytes,
    reason: mutation.reason,
    value: mutation.field === 'value' && good ? Number(fields.value) : value,
    timestampMs: good ? Date.parse(tsText.replace('.5+01:00', '.500+01:00')) : NaN,
  };
}

const rowsArb = fc.array(
  fc.record({
    mutation: fc.constantFrom(...MUTATIONS),
    quoteAll: fc.boolean(),
    term: fc.constantFrom('\n', '\r\n', '\r'),
  }),
  { minLength: 1, maxLength: 15 },
);

/** The input for generated rows, and where each row's terminator starts. */
function build(spec: { mutation: Mutation; quoteAll: boolean; term: string }[]) {
  const rows = spec.map((s, i) => makeRow(i, s.mutation, s.quoteAll));
  const parts: Buffer[] = [Buffer.from(HEADER)];
  let length = HEADER.length;
  const terminatorAt: number[] = [];
  const rowStart: number[] = [];
  rows.forEach((r, i) => {
    rowStart.push(length);
    parts.push(r.bytes, Buffer.from(spec[i]!.term));
    length += r.bytes.length;
    terminatorAt.push(length);
    length += spec[i]!.term.length;
  });
  return { input: Buffer.concat(parts), rows, terminatorAt, rowStart };
}

describe('DCGM reader properties', () => {
  it('turns every row into a sample or a dead letter with the expected reason, whatever the chunking', () => {
    fc.assert(
      fc.property(rowsArb, seeds, (spec, cuts) => {
        const { input, rows } = build(spec);
        const results = parse(input, []);
        // Records in == samples + dead letters, in order, each on its own line.
        expect(results).toHaveLength(rows.length);
        results.forEach((r, i) => {
          const want = rows[i]!;
          if (want.reason === null) {
            expect(r, `row ${i}`).toMatchObject({ ok: true, line: i + 2 });
            if (r.ok) {
              expect(r.sample.value).toBe(want.value);
              expect(r.sample.timestampMs).toBe(want.timestampMs);
              expect(r.sample.hostname).toBe('host, "one"');
            }
          } else {
            expect(r, `row ${i}`).toMatchObject({
              ok: false,
              deadLetter: { reason: want.reason, line: i + 2 },
            });
          }
        });
        expectWellFormed(results);
        expect(parse(input, cutsOf(cuts, input.length))).toEqual(results);
      }),
      { numRuns: 150, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('never yields a sample for a row the input ends inside; an abort drops it silently', () => {
    fc.assert(
      fc.property(rowsArb, seeds, fc.nat({ max: 1_000_000 }), (spec, cuts, at) => {
        const { input, terminatorAt, rowStart } = build(spec);
        const whole = parse(input, []);
        const stop = HEADER.length + (at % (input.length - HEADER.length + 1));
        const prefix = input.subarray(0, stop);
        const complete = terminatorAt.filter((t) => t < stop).length;
        // Aborted: exactly the complete rows, nothing for the tail.
        expect(parse(prefix, cutsOf(cuts, prefix.length), 'abort')).toEqual(whole.slice(0, complete));
        // Ended there: the complete rows, then one dead letter for a partial row (if one was started).
        const ended = parse(prefix, cutsOf(cuts, prefix.length));
        const started = complete < rowStart.length && rowStart[complete]! < stop;
        expect(ended.slice(0, complete)).toEqual(whole.slice(0, complete));
        expect(ended).toHaveLength(complete + (started ? 1 : 0));
        if (started) expect(ended[complete]).toMatchObject({ ok: false, deadLetter: { line: complete + 2 } });
      }),
      { numRuns: 150, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('fuzz: byte mutations of the real sample never throw, never lose a record, and only store what fits', () => {
    const sample = readFileSync(new URL('../../sample/dcgm_metrics_20250718_134233.csv', import.meta.url));
    let end = 0;
    for (let k = 0; k < 21; k++) end = sample.indexOf('\n', end) + 1;
    const base = sample.subarray(0, end); // header + 20 rows
    const headerEnd = base.indexOf('\n') + 1;
    const special = [0x22, 0x2c, 0x0a, 0x0d, 0x3d, 0x5c, 0xff, 0xc3, 0x30, 0x2e];
    const mutation = fc.record({
      at: fc.nat({ max: 1_000_000 }),
      kind: fc.constantFrom('set', 'insert', 'delete'),
      byte: fc.oneof(fc.constantFrom(...special), fc.integer({ min: 0, max: 255 })),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), seeds, (mutations, cuts) => {
        // Mutate the rows only: a destroyed header is a refused input, tested elsewhere.
        const rows = Array.from(base.subarray(headerEnd));
        for (const m of mutations) {
          const at = m.at % (rows.length + 1);
          if (m.kind === 'insert') rows.splice(at, 0, m.byte);
          else if (m.kind === 'delete') rows.splice(at, 1);
          else if (at < rows.length) rows[at] = m.byte;
        }
        const input = Buffer.concat([base.subarray(0, headerEnd), Buffer.from(rows)]);
        let results: RowResult[];
        try {
          results = parse(input, []);
        } catch (error) {
          // Only a row turned into something header-like could be refused; nothing else may throw.
          expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
          return;
        }
        expectWellFormed(results);
        // Every record the splitter sees (but the header) is a sample or a dead letter.
        const records = splitCsv(input, { unescape: false });
        expect(results).toHaveLength(records.length - 1);
        expect(parse(input, cutsOf(cuts, input.length))).toEqual(results);
      }),
      { numRuns: 300, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });
});
