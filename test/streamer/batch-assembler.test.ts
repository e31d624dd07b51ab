import { describe, expect, it } from 'vitest';
import type { Batch } from '../../src/domain/types.js';
import type { RowResult } from '../../src/ingest/dcgm-reader.js';
import { BatchAssembler } from '../../src/streamer/batch-assembler.js';
import { sample } from '../support/samples.js';

const ok = (value: number, line: number): RowResult => ({ ok: true, sample: sample({ value }), line });
const bad = (line: number): RowResult => ({
  ok: false,
  deadLetter: { source: 's', line, raw: 'x', reason: 'non_numeric_value', detail: '' },
});

describe('BatchAssembler', () => {
  it('cuts batches at batchSize rows, keeps order, and carries dead letters along', async () => {
    const published: Batch[] = [];
    const assembler = new BatchAssembler('s', 3, async (b) => {
      published.push(b);
    });
    await assembler.add([ok(1, 2), bad(3), ok(2, 4), ok(3, 5), ok(4, 6)]);
    expect(published).toHaveLength(1);
    expect(published[0]!.samples.map((s) => s.value)).toEqual([1, 2]);
    expect(published[0]!.deadLetters.map((d) => d.line)).toEqual([3]);
    await assembler.flush();
    expect(published.map((b) => b.samples.map((s) => s.value))).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await assembler.flush();
    expect(published).toHaveLength(2);
  });

  it('flushes a partial batch only once its oldest row is old enough', async () => {
    const published: Batch[] = [];
    const assembler = new BatchAssembler('s', 100, async (b) => {
      published.push(b);
    });
    await assembler.add([ok(1, 2)]);
    await assembler.flushIfOlderThan(60_000);
    expect(published).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 30));
    await assembler.flushIfOlderThan(20);
    expect(published).toHaveLength(1);
    expect(assembler.pending).toBe(0);
  });
});
