/**
 * Conformance suite of the source port (src/ports/source.ts), run against every adapter with inputs
 * each subject renders in its own format (CSV, exposition text, a scrape target):
 * - rows come in input order; a bad record is a dead letter naming its input, line and reason, and
 *   the input goes on after it; a finite input ends with an `end` chunk;
 * - abort stops an endless read promptly, and every row yielded before was complete (the record cut
 *   by the stop is not dead-lettered), none skipped;
 * - a read resumed from a checkpoint yields exactly the records after it.
 */
import { describe, expect } from 'vitest';
import type { RowSource, SourceCheckpoint, SourceChunk } from '../../src/ports/source.js';
import type { RowResult } from '../../src/ingest/validate.js';
import { type Capabilities, declareCapabilities } from './capabilities.js';

/** What a source adapter may lack. */
export type SourceCapability = 'resume';
const SOURCE_CAPABILITIES = ['resume'] as const satisfies readonly SourceCapability[];

/** One record of a test input: a good sample with this value, or a bad record. */
export type RecordSpec = { value: number } | { bad: true };

/** A finite input rendered by a subject. */
export interface FiniteInput {
  source: RowSource;
  /** The name its chunks and dead letters carry. */
  name: string;
  /** 1-based line of record `index`. */
  lineOf(index: number): number;
  /** The dead-letter reason of a bad record in this format. */
  badReason: string;
  close(): Promise<void>;
}

/** An input that never ends by itself: good records 0, 1, 2, ... until the read is aborted. */
export interface EndlessInput {
  source: RowSource;
  /** Leave an incomplete record at the end of the input (the stop must drop it silently). */
  cutRecord(): Promise<void>;
  close(): Promise<void>;
}

/** An adapter under test. */
export interface SourceSubject {
  finite(records: readonly RecordSpec[]): Promise<FiniteInput>;
  endless(): Promise<EndlessInput>;
}

/** Value of good record `i` in every subject's inputs (fractions, so a parse slip shows). */
export const valueOf = (i: number): number => i + 0.25;

/** `count` records, bad at the given indexes. */
export function records(count: number, bad: readonly number[] = []): RecordSpec[] {
  const badSet = new Set(bad);
  return Array.from({ length: count }, (_, i) =>
    badSet.has(i) ? { bad: true as const } : { value: valueOf(i) },
  );
}

async function readAll(
  source: RowSource,
  options: { resume?: readonly SourceCheckpoint[]; stopAfterChunks?: number } = {},
): Promise<{ chunks: SourceChunk[]; rows: RowResult[] }> {
  const chunks: SourceChunk[] = [];
  for await (const chunk of source.read({ resume: options.resume })) {
    chunks.push(chunk);
    if (
      options.stopAfterChunks !== undefined &&
      chunks.filter((c) => c.rows.length > 0).length >= options.stopAfterChunks
    )
      break;
  }
  return { chunks, rows: chunks.flatMap((c) => c.rows) };
}

/** Good rows' values and bad rows' reasons, in order: one comparable line per record. */
function describeRows(rows: readonly RowResult[]): string[] {
  return rows.map((r) => (r.ok ? `ok ${r.sample.value}` : `bad ${r.deadLetter.reason}@${r.deadLetter.line}`));
}

/**
 * Register the source conformance suite for one adapter.
 * @param name adapter name shown in the report
 * @param subject renders inputs for the adapter
 * @param capabilities what the adapter can do (`true` or why not)
 */
export function sourceConformance(
  name: string,
  subject: SourceSubject,
  capabilities: Capabilities<SourceCapability>,
): void {
  const cap = declareCapabilities('source', name, SOURCE_CAPABILITIES, capabilities);
  describe(`source conformance: ${name}`, () => {
    cap.it(
      [],
      'keeps input order; bad records are dead letters with input, line and reason; the input goes on',
      async () => {
        const specs = records(3000, [0, 5, 1500, 2999]);
        const input = await subject.finite(specs);
        try {
          const { chunks, rows } = await readAll(input.source);
          expect(rows).toHaveLength(specs.length);
          expect(new Set(chunks.map((c) => c.source))).toEqual(new Set([input.name]));
          specs.forEach((spec, i) => {
            const row = rows[i]!;
            if ('bad' in spec) {
              expect(row.ok, `record ${i} should be a dead letter`).toBe(false);
              if (!row.ok) {
                expect(row.deadLetter).toMatchObject({
                  source: input.name,
                  line: input.lineOf(i),
                  reason: input.badReason,
                });
                expect(row.deadLetter.raw.length).toBeGreaterThan(0);
              }
            } else {
              expect(row.ok, `record ${i} should be a sample`).toBe(true);
              if (row.ok) expect(row.sample.value).toBe(spec.value);
            }
          });
          expect(chunks.at(-1)?.end, 'a finite input ends with an end chunk').toBeDefined();
        } finally {
          await input.close();
        }
      },
    );

    cap.it(
      [],
      'abort stops an endless read promptly; every row read before is complete and none skipped',
      async () => {
        const input = await subject.endless();
        const abort = new AbortController();
        const rows: RowResult[] = [];
        let abortedAt = 0;
        try {
          for await (const chunk of input.source.read({ signal: abort.signal })) {
            rows.push(...chunk.rows);
            if (abortedAt === 0 && rows.length > 0) {
              await input.cutRecord();
              // Give the cut record time to be read, so the stop really cuts it.
              await new Promise((resolve) => setTimeout(resolve, 300));
              abortedAt = performance.now();
              abort.abort();
            }
          }
          const stopMs = performance.now() - abortedAt;
          expect(abortedAt).toBeGreaterThan(0);
          expect(stopMs, `stopped ${Math.round(stopMs)} ms after the abort`).toBeLessThan(3000);
          expect(rows.filter((r) => !r.ok)).toEqual([]);
          // Records 0..n-1 in order (a live target repeats them per scrape: compare within each repetition).
          const values = rows.map((r) => (r.ok ? r.sample.value : NaN));
          values.forEach((v, i) => {
            const expected = i === 0 || v === valueOf(0) ? valueOf(0) : values[i - 1]! + 1;
            expect(v).toBe(expected);
          });
        } finally {
          await input.close();
        }
      },
    );

    cap.it('resume', 'a read resumed from a checkpoint yields exactly the records after it', async () => {
      const specs = records(20_000, [7, 12_345]);
      const input = await subject.finite(specs);
      try {
        const full = await readAll(input.source);
        const first = await readAll(input.source, { stopAfterChunks: 3 });
        const checkpoints = first.chunks.flatMap((c) => (c.checkpoint ? [c.checkpoint] : []));
        expect(checkpoints.length).toBeGreaterThan(0);
        const last = checkpoints.at(-1)!;
        expect(last).toMatchObject({ source: input.name, records: first.rows.length });
        expect(first.rows.length).toBeLessThan(specs.length);
        const rest = await readAll(input.source, { resume: [last] });
        expect(describeRows([...first.rows, ...rest.rows])).toEqual(describeRows(full.rows));
        // Resuming after the end yields no record, only the end.
        const after = await readAll(input.source, { resume: [{ ...last, records: specs.length }] });
        expect(after.rows).toEqual([]);
        expect(after.chunks.at(-1)?.end).toBeDefined();
      } finally {
        await input.close();
      }
    });

    cap.it([], 'every source capability gates at least one case', () => {
      cap.assertAllUsed();
      return Promise.resolve();
    });
  });
}
